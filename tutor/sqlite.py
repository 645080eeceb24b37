"""How the tutor opens its SQLite files (jobs, progress, history): one way, in WAL mode.

WAL lets readers carry on while one writer commits, and `timeout` makes a writer wait for a
lock held by another thread or process sharing the data dir instead of failing at once.

    conn = PerThread(home / "jobs.sqlite3")
    with conn() as db:              # this thread's connection; commits, or rolls back on error
        db.execute("INSERT ...")
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

TIMEOUT_S = 30.0  # how long a writer waits for another's lock before sqlite3 raises "database is locked"


def connect(path: Path, **options: Any) -> sqlite3.Connection:
    """A connection to the file at `path` (its folder made if missing), in WAL mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=TIMEOUT_S, **options)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


class PerThread:
    """One connection per thread to one file: sqlite3 connections must not cross threads.
    Calling it gives the calling thread's connection, opened on first use."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def __call__(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
        return conn

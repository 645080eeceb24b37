"""Each learner's conversation as the page showed it, kept in SQLite in the data dir.

A turn is written when it starts (the learner's message), again as its replies stream, and once
more when it ends, each time in one transaction, so a reload or a server restart finds every
message up to the moment it happened. A turn that was still running when its server stopped is
shown with a note saying so. Messages are the page's own dicts ({"role", "content"}, content a
markdown string or {"path": figure}); this module never looks inside them.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .sqlite import connect

QUEUED, RUNNING, DONE = "queued", "running", "done"
INTERRUPTED = "⚠️ This turn was cut off when the tutor's server stopped. Send it again to rerun it."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
  learner TEXT NOT NULL,
  n INTEGER NOT NULL,
  state TEXT NOT NULL,
  messages TEXT NOT NULL,
  updated REAL NOT NULL,
  PRIMARY KEY (learner, n)
)"""


class HistoryStore:
    """Turns per learner, in order. Thread-safe; one store per data dir and process."""

    def __init__(self, path: Path):
        # one connection shared under a lock (autocommit; _tx opens each write); WAL: readers
        # never wait for a streaming writer
        self._db = connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._live: set[tuple[str, int]] = set()  # turns this process is running now

    def begin(self, learner: str, messages: list[dict[str, Any]], state: str = RUNNING) -> int:
        """A new turn (the learner's message, maybe a first answer) at the end; returns its number."""
        with self._lock, self._tx():
            row = self._db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE learner = ?",
                                   (learner,)).fetchone()
            n = int(row[0])
            self._db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                             (learner, n, state, _dump(messages), time.time()))
            if state != DONE:
                self._live.add((learner, n))
        return n

    def update(self, learner: str, n: int, messages: list[dict[str, Any]], state: str = RUNNING) -> None:
        """Replace turn `n`'s messages (all of them: the learner's and the replies so far)."""
        with self._lock, self._tx():
            self._db.execute("UPDATE turns SET messages = ?, state = ?, updated = ? WHERE learner = ? AND n = ?",
                             (_dump(messages), state, time.time(), learner, n))
            if state == DONE:
                self._live.discard((learner, n))

    def turns(self, learner: str) -> list[tuple[int, str, list[dict[str, Any]]]]:
        """(number, state, messages) per turn, oldest first; a turn left running by a stopped
        server reads as done, with the note that it was cut off."""
        with self._lock:
            rows = self._db.execute("SELECT n, state, messages FROM turns WHERE learner = ? ORDER BY n",
                                    (learner,)).fetchall()
            live = set(self._live)
        out = []
        for n, state, text in rows:
            messages = json.loads(text)
            if state != DONE and (learner, n) not in live:
                messages.append({"role": "assistant", "content": INTERRUPTED})
                state = DONE
            out.append((n, state, messages))
        return out

    def messages(self, learner: str) -> list[dict[str, Any]]:
        """The whole conversation as the page shows it."""
        return [m for _, _, msgs in self.turns(learner) for m in msgs]

    def clear(self, learner: str) -> None:
        with self._lock, self._tx():
            self._db.execute("DELETE FROM turns WHERE learner = ?", (learner,))
            self._live = {k for k in self._live if k[0] != learner}

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One write transaction; IMMEDIATE so two processes on one data dir never number a turn twice."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _dump(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False, default=str)


_stores: dict[Path, HistoryStore] = {}
_stores_lock = threading.Lock()


def open_history(home: Path) -> HistoryStore:
    """The store of one data dir (`TUTOR_HOME/history.sqlite`), opened once per process."""
    path = (Path(home) / "history.sqlite").resolve()
    with _stores_lock:
        if path not in _stores:
            _stores[path] = HistoryStore(path)
        return _stores[path]

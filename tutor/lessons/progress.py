"""Learner progress: where each learner is in the curriculum, saved so it survives a restart.

`ProgressStore` is the interface; `SQLiteStore` keeps one row per learner in a file under the
data dir. A PostgreSQL store for many app replicas implements the same two methods
(`load`, `save`) on a table with the same columns (learner TEXT PRIMARY KEY, data JSON,
updated TIMESTAMP); `open_store` is the one place that picks the store.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from ..sqlite import PerThread


@dataclass
class Progress:
    """One learner's place: the current lesson and step, what is done, pending quiz tries."""

    lesson: str | None = None  # current lesson id; None before "start"
    step: int = 0  # 0-based index into that lesson's steps
    done: list[str] = field(default_factory=list)  # finished lesson ids, in the order finished
    quiz_tries: int = 0  # wrong answers so far on the current quiz step
    answered: dict[str, bool] = field(default_factory=dict)  # "lesson:step" -> answered right

    @classmethod
    def from_json(cls, text: str) -> "Progress":
        raw = json.loads(text)
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}  # tolerate old rows
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


class ProgressStore(Protocol):
    def load(self, learner: str) -> Progress: ...
    def save(self, learner: str, progress: Progress) -> None: ...


class SQLiteStore:
    """Progress in one SQLite file. Each save is one transaction: a crash leaves the old row or
    the new one, never half. WAL mode lets many readers work while one learner saves."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn = PerThread(self.path)  # sqlite3 connections are per thread
        with self._conn() as db:
            db.execute("CREATE TABLE IF NOT EXISTS progress (learner TEXT PRIMARY KEY, data TEXT NOT NULL, "
                       "updated REAL NOT NULL)")

    def load(self, learner: str) -> Progress:
        row = self._conn().execute("SELECT data FROM progress WHERE learner = ?", (learner,)).fetchone()
        if row is None:
            return Progress()
        try:
            return Progress.from_json(row[0])
        except (ValueError, TypeError):  # a damaged row: start over rather than fail the learner
            return Progress()

    def save(self, learner: str, progress: Progress) -> None:
        with self._conn() as db:  # commits on success, rolls back on error
            db.execute("INSERT INTO progress (learner, data, updated) VALUES (?, ?, ?) "
                       "ON CONFLICT(learner) DO UPDATE SET data = excluded.data, updated = excluded.updated",
                       (learner, progress.to_json(), time.time()))


def open_store(home: Path) -> ProgressStore:
    """The store for this data dir (SQLite file HOME/progress.sqlite3)."""
    return SQLiteStore(Path(home) / "progress.sqlite3")

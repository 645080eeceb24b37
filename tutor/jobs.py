"""Background jobs: long work (fine-tuning, ...) that outlives the request which started it.

A job runs a generator of Replies in its own thread: progress replies (done=False), then the
final one. The request that started it only *follows* the job; when the page reloads or the
connection drops, that follower goes away and the job keeps running. Coming back, the learner
follows it again (or reads its result). Jobs of one kind beyond `limit` wait in a queue.

    job = jobs.submit(owner="ada", kind="finetune", title="...", work=lambda job: train(job), limit=1)
    for reply in job.follow(): ...      # the latest progress, then the result

With a data dir, every job is also a row in HOME/jobs.sqlite3 (its parameters, state, step
and last checkpoint), so a crash loses no trace of it: a job whose process died shows as
"interrupted" after a restart, and the tool that ran it can resume it from its checkpoint.

The core knows nothing about what a job does; the tool that submits it decides.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .sqlite import PerThread
from .tools import Reply, ToolError

log = logging.getLogger("tutor.jobs")


@dataclass
class Job:
    id: str
    owner: str  # the learner who started it; only they see it
    kind: str  # e.g. "finetune"; the concurrency limit is per kind
    title: str
    seq: int = 0  # submission order: the queue is first come, first served
    status: str = "queued"  # queued -> running -> done | failed | cancelled; "interrupted": its process died
    params: dict[str, Any] = field(default_factory=dict)  # what the tool needs to run it again (JSON)
    step: int = 0  # how far it got (the tool's unit, e.g. optimizer steps)
    checkpoint: str | None = None  # where the tool saved its last checkpoint, if it did
    checkpoint_step: int = 0  # the step that checkpoint holds: a resume starts there
    latest: Reply | None = None  # the newest progress reply
    result: Reply | None = None  # the final reply, once finished
    cancel: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0  # bumped on every update, so followers see each change once
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _store: "JobStore | None" = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def progressed(self, step: int, checkpoint: str | None = None) -> None:
        """The tool reached `step` (and saved a checkpoint there): stored, so a crash keeps it."""
        self.step = step
        if checkpoint is not None:
            self.checkpoint, self.checkpoint_step = checkpoint, step
        if self._store is not None:
            self._store.save(self)

    def _update(self, **changes) -> None:
        with self._changed:
            for k, v in changes.items():
                setattr(self, k, v)
            self.version += 1
            self._changed.notify_all()
        if self._store is not None and ("status" in changes or "result" in changes):
            self._store.save(self)

    def follow(self, stop: threading.Event | None = None, poll: float = 0.5) -> Iterator[Reply]:
        """Each new progress reply while the job runs, then its result. Leaving early (the
        follower's page closed) leaves the job running; `stop` set means stop following."""
        seen = -1
        while True:
            with self._changed:
                if self.version == seen and self.active:
                    self._changed.wait(poll)
                version, latest, result = self.version, self.latest, self.result
            if stop is not None and stop.is_set():
                return
            if result is not None:
                yield result
                return
            if version != seen and latest is not None:
                seen = version
                yield latest

    def wait(self, timeout: float | None = None) -> Reply | None:
        """Block until the job finished (or timeout); its result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self.result is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._changed.wait(left)
        return self.result


class JobStore:
    """Jobs as rows of one SQLite file (WAL; each save one transaction, so a crash leaves the
    old row or the new one). The `pid` column says which process runs a job: a queued or running
    job whose process is gone was interrupted."""

    TYPES = {"owner": "TEXT", "kind": "TEXT", "title": "TEXT", "status": "TEXT", "params": "TEXT", "step": "INTEGER",
             "checkpoint": "TEXT", "checkpoint_step": "INTEGER", "created": "REAL", "started": "REAL",
             "finished": "REAL", "pid": "INTEGER", "result": "TEXT"}
    COLUMNS = ("id", "seq", *TYPES)

    def __init__(self, path: Path):
        self.path = Path(path)
        self._conn = PerThread(self.path)  # sqlite3 connections are per thread
        with self._conn() as db:
            db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER UNIQUE)")
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, kind in self.TYPES.items():  # a file from an older tutor gains the new columns
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def next_seq(self, kind: str) -> int:
        """A number no process sharing this data dir has used (the row is claimed at once)."""
        with self._conn() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            db.execute("INSERT INTO jobs (id, kind, seq, status, pid) VALUES (?, ?, ?, 'queued', ?)",
                       (f"{kind}-{seq}", kind, seq, os.getpid()))
        return seq

    def save(self, job: Job) -> None:
        result = None if job.result is None else json.dumps(
            {"text": job.result.text, "data": job.result.data, "error": job.result.error}, default=str)
        row = (job.id, job.seq, job.owner, job.kind, job.title, job.status, json.dumps(job.params, default=str),
               job.step, job.checkpoint, job.checkpoint_step, job.created, job.started, job.finished, os.getpid(), result)
        with self._conn() as db:
            db.execute(f"INSERT OR REPLACE INTO jobs ({', '.join(self.COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(self.COLUMNS))})", row)

    def past(self) -> list[Job]:
        """Every stored job; one whose process died while it ran becomes "interrupted"."""
        rows = self._conn().execute(f"SELECT {', '.join(self.COLUMNS)} FROM jobs WHERE owner IS NOT NULL "
                                    "ORDER BY seq").fetchall()
        jobs = []
        for row in rows:
            r = dict(zip(self.COLUMNS, row))
            job = Job(r["id"], r["owner"], r["kind"], r["title"], seq=r["seq"], status=r["status"],
                      params=json.loads(r["params"] or "{}"), step=r["step"] or 0, checkpoint=r["checkpoint"],
                      checkpoint_step=r["checkpoint_step"] or 0,
                      created=r["created"] or 0.0, started=r["started"], finished=r["finished"])
            if r["result"]:
                res = json.loads(r["result"])
                job.result = Reply(text=res["text"], data=res["data"], error=res["error"])
            job._store = self
            if job.active and not _alive(r["pid"]):
                job.status = "interrupted"
                saved = (f"its last checkpoint holds step {job.checkpoint_step}" if job.checkpoint
                         else "it had saved no checkpoint yet, so it starts again")
                job.result = Reply(text=f"Job {job.id} was interrupted at step {job.step} (the tutor stopped); "
                                        f"{saved}. Resume it: `/{job.kind} resume {job.id}`.", error=True,
                                   data={"job": job.id, "status": "interrupted", "step": job.step,
                                         "checkpoint_step": job.checkpoint_step})
                self.save(job)  # now ours: a later restart finds it interrupted, not running
            jobs.append(job)
        return jobs


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class Jobs:
    """Every job of this process, by id; at most `limit` running per kind, the rest queued.

    With `home`, jobs are stored in HOME/jobs.sqlite3 and the jobs of earlier runs are listed too.
    """

    def __init__(self, home: Path | None = None) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Condition] = {}
        self._ids = itertools.count(1)
        self._home, self._store, self._opened = home, None, home is None

    @property
    def store(self) -> JobStore | None:
        """The jobs file, opened on first use (a process that runs no job writes nothing); the
        jobs of earlier runs join this process's list then."""
        if not self._opened:
            store = JobStore(Path(self._home) / "jobs.sqlite3")
            past = store.past()
            with self._lock:
                if not self._opened:
                    for job in past:
                        self._jobs.setdefault(job.id, job)
                    self._store, self._opened = store, True
        return self._store

    def submit(self, owner: str, kind: str, title: str, work: Callable[[Job], Iterator[Reply]],
               limit: int = 1, params: dict[str, Any] | None = None) -> Job:
        """Start `work(job)` in a background thread (or queue it behind `limit` running jobs).
        `params` (JSON-able) are stored with the job, so the tool can run it again after a crash."""
        n = self.store.next_seq(kind) if self.store else next(self._ids)
        job = Job(f"{kind}-{n}", owner, kind, title, seq=n, params=dict(params or {}), _store=self.store)
        return self._start(job, work, limit)

    def resume(self, job: Job, work: Callable[[Job], Iterator[Reply]], limit: int = 1) -> Job:
        """Run an interrupted job again under its own id; `work` picks up from `job.checkpoint`."""
        with self._lock:  # it keeps its place in the queue: it was running when it stopped
            job.cancel = threading.Event()
            job.status, job.result, job.finished = "queued", None, None
        return self._start(job, work, limit)

    def _start(self, job: Job, work: Callable[[Job], Iterator[Reply]], limit: int) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            self._slots.setdefault(job.kind, threading.Condition(self._lock))
        if job._store is not None:
            job._store.save(job)
        job.latest = Reply(text=f"Job {job.id} queued: {self.waiting_text(job)}", done=False, progress=0.0)
        threading.Thread(target=self._run, args=(job, work, max(1, limit)), name=job.id, daemon=True).start()
        return job

    def waiting_text(self, job: Job) -> str:
        ahead = [j.id for j in self.all() if j.kind == job.kind and j.active and j.seq < job.seq]
        return f"waiting for {', '.join(ahead)} to finish." if ahead else "starting."

    def _run(self, job: Job, work: Callable[[Job], Iterator[Reply]], limit: int) -> None:
        slot = self._slots[job.kind]
        with slot:  # first come, first served: wait until fewer than `limit` of this kind run
            while not job.cancel.is_set() and (
                    sum(j.kind == job.kind and j.status == "running" for j in self._jobs.values()) >= limit
                    or any(j.kind == job.kind and j.status == "queued" and j.seq < job.seq
                           for j in self._jobs.values())):
                slot.wait(1.0)
            if job.cancel.is_set():
                job.status = "cancelled"
            else:
                job.status, job.started = "running", time.time()
        if job._store is not None:
            job._store.save(job)
        if job.status == "cancelled":
            self._finish(job, Reply(text=f"Job {job.id} was cancelled before it started.", error=True,
                                    data={"job": job.id, "status": "cancelled"}), "cancelled")
            return
        final, status = None, "done"
        try:
            for reply in work(job):
                if reply.done:
                    final = reply
                else:
                    job._update(latest=reply)
            if final is None:
                final = Reply(text=f"Job {job.id} ended without a result.", error=True)
            if final.error:
                status = "failed"
            elif job.cancel.is_set():
                status = "cancelled"
        except ToolError as e:
            final, status = Reply(text=str(e), error=True, data={"job": job.id, "status": "failed"}), "failed"
        except Exception as e:  # a bug in the work: say so, keep the process alive
            log.exception("job %s failed", job.id)
            final, status = Reply(text=f"Job {job.id} failed: {type(e).__name__}: {e}. This is a bug; it "
                                       "has been logged.", error=True, data={"job": job.id, "status": "failed"}), "failed"
        self._finish(job, final, status)

    def _finish(self, job: Job, final: Reply, status: str) -> None:
        job._update(result=final, status=status, finished=time.time())
        slot = self._slots[job.kind]
        with slot:
            slot.notify_all()

    def get(self, job_id: str) -> Job | None:
        self.store  # noqa: B018  (opens the file: jobs of earlier runs count too)
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        self.store  # noqa: B018
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.seq)

    def of(self, owner: str, kind: str | None = None) -> list[Job]:
        """One learner's jobs, oldest first (optionally of one kind)."""
        return [j for j in self.all() if j.owner == owner and (kind is None or j.kind == kind)]

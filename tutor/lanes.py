"""Fair turns for a class on one server: lanes with their own limits, a bounded queue, time limits.

Every turn runs in one lane, chosen from what it will do (`lane_for`):
- `quick`: tokenizer tools, lesson navigation, free questions (many slots; a short time limit);
- `model`: tools that run a model (few slots: they share the CPU or GPU; a longer time limit);
- `long`: following background work such as a fine-tune (no time limit: the job itself runs in
  tutor/jobs.py with its own limits);
- `control`: Stop and cancel: never limited, never queued.
So quick turns never wait behind model or long work. A full lane queues at most `queue` turns and
says "busy, N ahead of you" while they wait; past that it refuses at once instead of hanging. A
learner has at most `per_learner` turns at once. Each turn's tool runs in a worker thread; when its
time limit passes, the learner is told, the tool's cancel flag is set, and the slot stays held
until the tool really returns (a tool that ignores the flag cannot take unbounded threads).
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .tools import Reply, Tool

LANES = ("quick", "model", "long", "control")


@dataclass
class LaneLimits:
    quick: int = 16
    model: int = 4
    long: int = 8
    queue: int = 16  # turns that may wait in one lane
    per_learner: int = 2
    quick_s: float = 30.0  # time limits; long and control turns have none
    model_s: float = 300.0

    @classmethod
    def of(cls, settings: Any) -> "LaneLimits":
        return cls(settings.lane_quick, settings.lane_model, settings.lane_long, settings.lane_queue,
                   settings.learner_concurrent_jobs, settings.time_limit_quick_s, settings.time_limit_model_s)


def lane_for(tool: Tool, args: dict[str, Any]) -> str:
    """A tool's lane: what it registered (a name, or a function of the call's arguments), else
    `model` when it takes a model, else `quick`."""
    lane = tool.lane(args) if callable(tool.lane) else tool.lane
    if lane:
        return lane if lane in LANES else "quick"
    return "model" if any(p.choices == "models" for p in tool.params) else "quick"


def message_lane(message: str, tutor: Any) -> str:
    """The lane of one chat message (a command's tool decides; anything else is quick)."""
    from . import commands
    text = (message or "").strip()
    if not text.startswith("/"):
        return "quick"
    try:
        call = commands.parse(text, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
    except Exception:  # a typo is answered quickly with its error message
        return "quick"
    return lane_for(call.tool, call.args)


class _Lane:
    def __init__(self, limit: int | None):
        self.limit, self.running, self.waiting = limit, 0, deque()

    def free(self) -> bool:
        return self.limit is None or self.running < self.limit


_DONE = object()


class Lanes:
    """The lanes of one server, shared by all its learners."""

    def __init__(self, limits: LaneLimits):
        self.limits = limits
        self.lanes = {"quick": _Lane(limits.quick), "model": _Lane(limits.model), "long": _Lane(limits.long),
                      "control": _Lane(None)}
        self.cond = threading.Condition()
        self.turns: dict[str, int] = {}  # learner -> turns waiting or running

    def status(self) -> dict[str, dict[str, int]]:
        with self.cond:
            return {n: {"running": l.running, "waiting": len(l.waiting)} for n, l in self.lanes.items()}

    def run(self, learner: str, lane: str, work: Callable[[], Iterator[Reply]],
            cancel: threading.Event) -> Iterator[Reply]:
        """The replies of `work()`, run in `lane` for `learner`: first any "busy" notes while it
        waits, or one refusal when the learner or the lane's queue is full."""
        ticket = object()  # Gradio may run each step of a turn on another thread: not a thread id
        refused = self._enter(learner, lane, ticket)
        if refused:
            yield Reply(text=refused, error=True)
            return
        admitted = False
        try:
            admitted = yield from self._wait(lane, ticket, cancel)
            if admitted:
                yield from self._work(learner, lane, work, cancel)
        finally:
            if not admitted:  # stopped or closed while waiting; the worker leaves by itself
                self._leave(learner, lane, ticket)

    def _enter(self, learner: str, lane: str, ticket: object) -> str | None:
        with self.cond:
            if lane != "control" and self.turns.get(learner, 0) >= self.limits.per_learner:
                return (f"You already have {self.limits.per_learner} turns running. Wait for one to finish, "
                        "or press Stop (a turn stopped after its time limit may still be finishing).")
            l = self.lanes[lane]
            if not l.free() and len(l.waiting) >= self.limits.queue:
                return (f"The server is busy: all {l.limit} {lane} slots are in use and {len(l.waiting)} turns "
                        "are waiting, so yours was not queued. Try again in a minute.")
            self.turns[learner] = self.turns.get(learner, 0) + 1
            l.waiting.append(ticket)
            return None

    def _wait(self, lane: str, me: object, cancel: threading.Event) -> Iterator[Reply]:
        """Wait for a slot in FIFO order, saying how many are ahead whenever that changes.
        Returns True once admitted, False when the learner gave up (Stop)."""
        l, shown = self.lanes[lane], None
        while True:
            with self.cond:
                if l.waiting[0] is me and l.free():
                    l.waiting.popleft()
                    l.running += 1
                    self.cond.notify_all()
                    return True
                if cancel.is_set():
                    return False
                ahead = l.waiting.index(me)
                if ahead != shown:
                    shown = ahead
                    note = f"{ahead} ahead of you" if ahead else "you are next"
                    yield Reply(text=f"⏳ Busy: all {l.limit} {lane} slots are in use; {note}. Press Stop to give up.",
                                done=False)
                    continue
                self.cond.wait(timeout=1.0)

    def _work(self, learner: str, lane: str, work: Callable[[], Iterator[Reply]],
              cancel: threading.Event) -> Iterator[Reply]:
        """Run `work` in a worker thread; pass its replies on until it ends or its time runs out."""
        out: queue.Queue = queue.Queue()

        def worker() -> None:
            try:
                for reply in work():
                    out.put(reply)
            except BaseException as e:  # chat.respond never raises; this is a last guard
                out.put(Reply(text=f"The turn failed: {type(e).__name__}: {e}", error=True))
            finally:
                out.put(_DONE)
                self._leave(learner, lane)

        # the worker runs in this turn's context, so what its tool reports (a model loading,
        # tutor/reporting.py) still reaches whoever listens to the turn
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(worker,), daemon=True, name=f"tutor-{lane}-{learner[:12]}").start()
        limit = {"quick": self.limits.quick_s, "model": self.limits.model_s}.get(lane)
        deadline = time.monotonic() + limit if limit else None
        while True:
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            try:
                item = out.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    cancel.set()
                    yield Reply(text=f"This took longer than the {lane} time limit ({limit:g} s) and was stopped. "
                                     "Try a shorter text or fewer steps.", error=True)
                    return
                continue
            if item is _DONE:
                return
            yield item

    def _leave(self, learner: str, lane: str, waiting: object | None = None) -> None:
        """A turn is over: it gives back its queue place (`waiting`) or its running slot."""
        with self.cond:
            l = self.lanes[lane]
            if waiting is None:
                l.running -= 1
            elif waiting in l.waiting:
                l.waiting.remove(waiting)
            left = self.turns.get(learner, 1) - 1
            if left > 0:
                self.turns[learner] = left
            else:
                self.turns.pop(learner, None)
            self.cond.notify_all()

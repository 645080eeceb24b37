"""The page's turns run here: in the background, stored as they stream, followed by any page.

A learner's message becomes a turn in the history store at once (tutor/history.py). One worker
thread per learner runs that learner's turns in the order they were sent, so a message sent while
a turn runs is queued (and shown as queued), never dropped. The turn writes every reply, and the
latest progress report while it waits on something slow (tutor/reporting.py), to the store. A
page only *follows* the store: the request that sent the message, or a reloaded page, or a page
open in a second tab, all see the same conversation, and a running turn goes on when a page goes.
Stop ends a turn for the queue at once: a tool still winding down (a fine-tune saving what it
learnt) goes on writing into that turn's place while the learner's next message runs.

    runner = TurnRunner(tutor, store, render)     # render: Reply -> the page's messages
    n = runner.submit("ada", "/generate The cat")
    for messages in runner.follow("ada", n): ...  # the whole conversation, after each change
"""

from __future__ import annotations

import html
import logging
import threading
from collections import defaultdict, deque
from typing import Any, Callable, Iterator

from . import chat
from .history import DONE, QUEUED, RUNNING, HistoryStore
from .reporting import Report, stream
from .tools import Reply

log = logging.getLogger("tutor.runner")
Render = Callable[[Reply], list[dict[str, Any]]]
QUEUED_NOTE = "⏳ Queued: this runs when your turn before it ends."
STOPPED_NOTE = "⏹ Stopped."


def progress_message(r: Report) -> dict[str, Any]:
    """A progress report as the page's last message: what is happening, a bar when it counts."""
    bar = ""
    if r.fraction is not None:
        bar = (f'\n\n<progress class="tutor-progress" value="{r.fraction:.3f}" max="1" '
               f'aria-label="progress"></progress> {r.fraction:.0%}')
    return {"role": "assistant", "content": "⏳ " + html.escape(r.line(), quote=False) + bar}


class TurnRunner:
    """Per-learner queues of turns, run in the background and kept in the history store."""

    def __init__(self, tutor: Any, store: HistoryStore, render: Render, max_queued: int = 5,
                 tick_s: float = 1.0, respond: Callable[..., Iterator] | None = None):
        self.tutor, self.store, self.render = tutor, store, render
        # how a turn runs: (message, session, cancel) -> replies; the page runs it in its lane
        self.respond = respond or chat.respond
        self.max_queued, self.tick_s = max_queued, tick_s
        self._changed = threading.Condition()
        self._version: dict[str, int] = defaultdict(int)  # bumped on every stored change
        self._queue: dict[str, deque] = defaultdict(deque)  # (n, message) waiting per learner
        self._running: dict[str, tuple[int, threading.Event]] = {}  # learner -> (turn, cancel)
        self._winding: dict[str, set[int]] = defaultdict(set)  # stopped turns whose tool still winds down

    # ---- sending --------------------------------------------------------------------------

    def submit(self, learner: str, message: str, shown: str | None = None) -> int:
        """Store the learner's message as a new turn and run it after the learner's earlier ones.
        `shown` is the message as the page shows it (escaped); a full queue is refused with a note."""
        user = {"role": "user", "content": shown if shown is not None else message}
        with self._changed:
            busy = learner in self._running
            if busy and len(self._queue[learner]) >= self.max_queued:
                return self._refuse(learner, user, f"You already have {self.max_queued} messages waiting. "
                                    "Wait for them, or press Stop.")
            n = self.store.begin(learner, [user, *([_note(QUEUED_NOTE)] if busy else [])],
                                 QUEUED if busy else RUNNING)
            self._queue[learner].append((n, message, user))
            if learner not in self._running:
                self._start(learner)
            self._bump(learner)
        return n

    def note(self, learner: str, message: str, shown: str, answer: str) -> int:
        """A turn answered at once by the page itself (e.g. a refused upload path)."""
        with self._changed:
            return self._refuse(learner, {"role": "user", "content": shown}, answer)

    def _refuse(self, learner: str, user: dict, text: str) -> int:
        n = self.store.begin(learner, [user, _note("⚠️ " + text)], DONE)
        self._bump(learner)
        return n

    def stop(self, learner: str) -> None:
        """Stop the learner's running turn (its tool sees ctx.cancel); queued ones then run."""
        with self._changed:
            running = self._running.get(learner)
        if running:
            running[1].set()

    # ---- running ----------------------------------------------------------------------------

    def _start(self, learner: str) -> None:
        """Called holding the lock: one worker per learner, until its queue is empty."""
        first = self._next(learner)
        threading.Thread(target=self._work, args=(learner, first), daemon=True,
                         name=f"turns-{learner[:12]}").start()

    def _next(self, learner: str) -> tuple:
        """Called holding the lock: the learner's next turn becomes the running one."""
        n, message, user = self._queue[learner].popleft()
        cancel = threading.Event()
        self._running[learner] = (n, cancel)
        return n, message, user, cancel

    def _work(self, learner: str, job: tuple) -> None:
        while True:
            self._run(learner, *job)
            with self._changed:
                if not self._queue[learner]:
                    del self._running[learner]
                    self._bump(learner)
                    return
                job = self._next(learner)

    def _run(self, learner: str, n: int, message: str, user: dict, cancel: threading.Event) -> None:
        session = self.tutor.session(learner)
        self._save(learner, n, [user], RUNNING)
        items = stream(lambda: self.respond(message, session, cancel), tick_s=self.tick_s)
        shown, ended = self._store(learner, n, user, items, [], stop=cancel)
        if ended:
            self._end(learner, n, user, shown, cancel)
            return
        # Stopped, but the tool is still winding down (a fine-tune measures and saves what it
        # learnt): what it says still lands in this turn's place, while the learner's next
        # message runs now instead of waiting behind it.
        with self._changed:
            self._winding[learner].add(n)
        threading.Thread(target=self._wind_down, args=(learner, n, user, items, shown, cancel), daemon=True,
                         name=f"turns-{learner[:12]}-stopped").start()

    def _wind_down(self, learner: str, n: int, user: dict, items: Iterator, shown: list,
                   cancel: threading.Event) -> None:
        shown, _ = self._store(learner, n, user, items, shown)
        with self._changed:
            self._winding[learner].discard(n)
        self._end(learner, n, user, shown, cancel)

    def _store(self, learner: str, n: int, user: dict, items: Iterator, shown: list,
               stop: threading.Event | None = None) -> tuple[list, bool]:
        """Store each reply and progress report of turn `n` as it comes: (its messages, True) when
        the turn ends, or (its messages so far, False) as soon as `stop` is set."""
        try:
            for item in items:
                if isinstance(item, Report):
                    self._save(learner, n, [user, *shown, progress_message(item)], RUNNING)
                else:
                    shown = self.render(item)
                    self._save(learner, n, [user, *shown], RUNNING)
                if stop is not None and stop.is_set():
                    return shown, False
        except Exception as e:  # a bug in rendering must not kill the learner's worker
            log.exception("turn %s of %s failed", n, learner)
            shown = [*shown, _note(f"⚠️ The page could not show the reply: {type(e).__name__}: {e}")]
        return shown, True

    def _end(self, learner: str, n: int, user: dict, shown: list, cancel: threading.Event) -> None:
        if cancel.is_set():
            shown = [*shown, _note(STOPPED_NOTE)]
        self._save(learner, n, [user, *shown], DONE)

    def _save(self, learner: str, n: int, messages: list[dict[str, Any]], state: str) -> None:
        self.store.update(learner, n, messages, state)
        with self._changed:
            self._bump(learner)

    def _bump(self, learner: str) -> None:
        self._version[learner] += 1
        self._changed.notify_all()

    # ---- following --------------------------------------------------------------------------

    def busy(self, learner: str) -> bool:
        """Whether a turn of the learner's is running, or stopped and still winding down."""
        with self._changed:
            return learner in self._running or bool(self._winding.get(learner))

    def follow(self, learner: str, until: int | None = None, poll_s: float = 15.0) -> Iterator[list[dict]]:
        """The conversation now, then again after each change, until turn `until` is done (or,
        with None, until the learner has nothing running: what a reloaded page does)."""
        seen = -1
        while True:
            with self._changed:
                if self._version[learner] == seen:
                    self._changed.wait(poll_s)
                version = self._version[learner]
            if version != seen:
                seen = version
                turns = self.store.turns(learner)
                yield [m for _, _, msgs in turns for m in msgs]
                if self._finished(learner, until, turns):
                    return

    def _finished(self, learner: str, until: int | None, turns: list) -> bool:
        if until is None:
            return not self.busy(learner)
        return any(n == until and state == DONE for n, state, _ in turns)


def _note(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}

"""The page's chat events: one learner's turn, Stop, the chat API for clients, and restoring a
conversation on page load. A page's turn runs in tutor/runner.py (in the background, in order,
stored as it streams in the history store); the events here only send it and follow it."""

from __future__ import annotations

import threading
from typing import Any, Iterator

import gradio as gr

from .. import chat
from ..context import Tutor
from ..history import open_history
from ..runner import TurnRunner
from .learners import TurnSlots, learner_id
from .panels import outline_panel
from .render import escape_learner_text, normalize_history, reply_messages
from .uploads import check_file_args


REATTACHED = "↻ Re-attached: your turn above is still running, and goes on here."


class Turns:
    """The event handlers of one page, sharing the tutor, the Stop flags and the turn limits."""

    def __init__(self, tutor: Tutor):
        self.tutor = tutor
        self.figure_dir = tutor.settings.home / "figures"
        self.cancels: dict[str, threading.Event] = {}
        self.jobs = TurnSlots(tutor.settings.learner_concurrent_jobs)  # the chat API's turns
        self.history = open_history(tutor.settings.home)
        self.runner = TurnRunner(tutor, self.history, lambda reply: reply_messages(reply, self.figure_dir))

    def converse(self, message: str, history: Any, learner: str) -> Iterator[list]:
        """One chat turn: the learner's message (escaped), then the history as each reply streams."""
        message = message or ""
        history = normalize_history(history)
        history.append({"role": "user", "content": escape_learner_text(message) or "(empty)"})
        base = len(history)
        refused = check_file_args(message, self.tutor)
        if refused or not self.jobs.start(learner):
            text = refused or (f"You already have {self.jobs.limit} turns running. Wait for one to finish, "
                               "or press Stop.")
            yield history + [{"role": "assistant", "content": "⚠️ " + text}]
            return
        cancel = self.cancels[learner] = threading.Event()
        try:
            yield history
            for reply in chat.respond(message, self.tutor.session(learner), cancel):
                history = history[:base] + reply_messages(reply, self.figure_dir)
                if reply.done:  # a finished reply stays; what the turn streams next goes below it
                    base = len(history)  # (an explanation after the tool call it made, #13)
                yield history
        except Exception as e:  # the page must never freeze on a bug in this layer
            history.append({"role": "assistant", "content": f"⚠️ The page could not show the reply: {e}"})
            yield history
        finally:
            self.jobs.end(learner)

    def turn(self, message: str, history: list, browser_id: str | None,
             request: gr.Request = None) -> Iterator[tuple[Any, Any, str, Any]]:
        """The page's turn: sent to the learner's queue at once (shown as queued when another
        turn runs), then followed as it streams. Only the first update empties the message box,
        so a learner typing the next message while this one streams keeps what they type."""
        learner = learner_id(browser_id, request)
        message = message or ""
        shown = escape_learner_text(message) or "(empty)"
        refused = check_file_args(message, self.tutor)
        n = (self.runner.note(learner, message, shown, refused) if refused
             else self.runner.submit(learner, message, shown))
        box: Any = ""
        for messages in self.runner.follow(learner, n):
            yield messages, box, learner, gr.skip()
            box = gr.skip()
        yield gr.skip(), box, learner, outline_panel(self.tutor, learner)

    def chat_api(self, message: str, history: list | None = None, learner: str = "",
                 request: gr.Request = None) -> tuple[list, str, str]:
        """A chat turn for clients: history as [{"role", "content"}] where content is a string or
        content blocks ([{"type": "text", "text": ...}]). Returns (new history with string content,
        "" for the message box, the learner id to send next time).

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            history: the conversation so far (may be empty)
            learner: a learner id (letters, digits, - and _) to keep state between calls; empty for a new one
        """
        who = learner_id(learner or None, request)
        out: list = []
        for out in self.converse(message, history, who):
            pass
        return out, "", who

    def stop(self, browser_id: str | None, request: gr.Request = None) -> None:
        learner = learner_id(browser_id, request)
        self.runner.stop(learner)
        if learner in self.cancels:
            self.cancels[learner].set()

    def identify(self, browser_id: str | None, request: gr.Request = None) -> str:
        """On page load, before anything else: this browser's learner id, made now when it has
        none, so two quick first messages belong to one learner."""
        return learner_id(browser_id, request)

    def restore(self, browser_id: str | None, request: gr.Request = None) -> Iterator[tuple[Any, Any, str]]:
        """On page load: this learner's conversation (from the history store, so also after a
        server restart) and outline. A turn still running (a long /generate, a fine-tune) is
        followed here until it ends, with a note saying so."""
        learner = learner_id(browser_id, request)
        outline = outline_panel(self.tutor, learner)
        for messages in self.runner.follow(learner):
            if self.runner.busy(learner):
                messages = [*messages, {"role": "assistant", "content": REATTACHED}]
            yield (messages if messages else gr.skip()), learner, outline
        yield gr.skip(), learner, outline_panel(self.tutor, learner)

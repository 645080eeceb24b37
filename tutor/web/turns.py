"""The page's chat events: one learner's turn, Stop, the chat API for clients, and restoring a
conversation on page load. A page's turn runs in tutor/runner.py (in the background, in order, in
its lane, stored as it streams in the history store); the events here only send it and follow it.
Who a turn is for comes from the request (the server's session cookie or the course login),
never from what the client sends."""

from __future__ import annotations

import html
import threading
from typing import Any, Callable, Iterator

import gradio as gr

from .. import chat
from ..context import Session, Tutor
from ..history import open_history
from ..lanes import message_lane
from ..runner import TurnRunner
from .classroom import Classroom
from .panels import outline_panel
from .render import escape_learner_text, normalize_history, reply_messages
from .uploads import attach_upload, check_file_args, upload_dir

SIGN_IN = ("This server serves signed-in learners only: open the tutor through your course's page "
           "(its login sends the signed X-Tutor-Learner header).")
REATTACHED = "↻ Re-attached: your turn above is still running, and goes on here."


class Turns:
    """The event handlers of one page, sharing the tutor, the classroom (identity, lanes,
    uploads, Stop flags) and the turn runner (background turns, the history store)."""

    def __init__(self, tutor: Tutor):
        self.tutor = tutor
        self.figure_dir = tutor.settings.home / "figures"
        self.room = Classroom(tutor, upload_dir)
        self.history = open_history(tutor.settings.home)
        self.runner = TurnRunner(tutor, self.history, lambda reply: reply_messages(reply, self.figure_dir),
                                 respond=self._in_lane)

    def _in_lane(self, message: str, session: Session, cancel: threading.Event):
        """A page turn as the runner runs it: in its lane (quick, model, long), with the runner's Stop flag."""
        return self.room.lanes.run(session.learner_id, message_lane(message, self.tutor),
                                   lambda: chat.respond(message, session, cancel), cancel)

    def owns(self, learner: str) -> Callable[[str], bool]:
        return lambda path: self.room.uploads.owns(learner, path)

    def converse(self, message: str, history: Any, learner: str | None) -> Iterator[list]:
        """One chat turn: the learner's message (escaped), then the history as each reply streams."""
        message = message or ""
        history = normalize_history(history)
        history.append({"role": "user", "content": escape_learner_text(message) or "(empty)"})
        base = len(history)
        refused = SIGN_IN if learner is None else check_file_args(message, self.tutor, self.owns(learner))
        if refused:
            yield history + [{"role": "assistant", "content": "⚠️ " + html.escape(refused)}]
            return
        try:
            yield history
            for reply in self.room.respond(message, learner):
                history = history[:base] + reply_messages(reply, self.figure_dir)
                if reply.done:  # a finished reply stays; what the turn streams next goes below it
                    base = len(history)  # (an explanation after the tool call it made, #13)
                yield history
        except Exception as e:  # the page must never freeze on a bug in this layer
            history.append({"role": "assistant",
                            "content": f"⚠️ The page could not show the reply: {html.escape(str(e))}"})
            yield history

    def turn(self, message: str, history: list, request: gr.Request = None) -> Iterator[tuple[Any, Any, Any]]:
        """The page's turn: sent to the learner's queue at once (shown as queued when another
        turn runs), then followed as it streams. Only the first update empties the message box,
        so a learner typing the next message while this one streams keeps what they type."""
        learner = self.room.learner(request)
        message = message or ""
        if learner is None:
            yield normalize_history(history) + [{"role": "assistant", "content": "⚠️ " + html.escape(SIGN_IN)}], "", gr.skip()
            return
        shown = escape_learner_text(message) or "(empty)"
        refused = check_file_args(message, self.tutor, self.owns(learner))
        n = (self.runner.note(learner, message, shown, refused) if refused
             else self.runner.submit(learner, message, shown))
        box: Any = ""
        for messages in self.runner.follow(learner, n):
            yield self.room.shown(learner, messages), box, gr.skip()
            box = gr.skip()
        yield gr.skip(), box, outline_panel(self.tutor, learner)

    def chat_api(self, message: str, history: list | None = None, learner: str = "",
                 request: gr.Request = None) -> tuple[list, str, str]:
        """A chat turn for clients: history as [{"role", "content"}] where content is a string or
        content blocks ([{"type": "text", "text": ...}]). Returns (new history with string content,
        "" for the message box, the learner token to send next time).

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            history: the conversation so far (may be empty)
            learner: the token this server returned last time (empty for a new learner); a name you choose is ignored
        """
        who, token = self.room.caller(request, learner or None)
        out: list = []
        for out in self.converse(message, history, who):
            pass
        return out, "", token

    def stop(self, request: gr.Request = None) -> None:
        learner = self.room.learner(request)  # only this session's own turns
        if learner:
            self.runner.stop(learner)
            self.room.stop(learner)

    def restore(self, request: gr.Request = None) -> Iterator[tuple[Any, Any]]:
        """On page load: this session's conversation (from the history store, so also after a
        server restart) and outline. A turn still running (a long /generate, a fine-tune) is
        followed here until it ends, with a note saying so."""
        learner = self.room.learner(request)
        outline = outline_panel(self.tutor, learner)
        if not learner:
            yield gr.skip(), outline
            return
        last: list = []
        for last in self.runner.follow(learner):
            last = self.room.shown(learner, last)
            shown = [*last, {"role": "assistant", "content": REATTACHED}] if self.runner.busy(learner) else last
            yield (shown if shown else gr.skip()), outline
        yield (last if last else gr.skip()), outline_panel(self.tutor, learner)  # the whole conversation, as it ended

    def attach(self, box: str, path: str | None, request: gr.Request = None) -> str:
        return attach_upload(box, path, self.tutor.registry.tools, self.owns(self.room.learner(request) or ""))

"""The page's chat events: one learner's turn (in its lane, with Stop, history kept across reloads),
the chat API for clients, and restoring a conversation on page load. Who a turn is for comes from
the request (the server's session cookie or the course login), never from what the client sends."""

from __future__ import annotations

import html
from typing import Any, Callable, Iterator

import gradio as gr

from ..context import Tutor
from .classroom import Classroom
from .panels import outline_panel
from .render import escape_learner_text, normalize_history, reply_messages
from .uploads import attach_upload, check_file_args, upload_dir

SIGN_IN = ("This server serves signed-in learners only: open the tutor through your course's page "
           "(its login sends the signed X-Tutor-Learner header).")


class Turns:
    """The event handlers of one page, sharing the tutor and the classroom (identity, lanes,
    uploads, Stop flags)."""

    def __init__(self, tutor: Tutor):
        self.tutor = tutor
        self.figure_dir = tutor.settings.home / "figures"
        self.room = Classroom(tutor, upload_dir)

    def saved(self, learner: str) -> list:
        return self.tutor.session(learner).state.setdefault("web", {}).setdefault("history", [])

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
        finally:
            self.saved(learner)[:] = history

    def turn(self, message: str, history: list, request: gr.Request = None) -> Iterator[tuple[Any, str, Any]]:
        learner = self.room.learner(request)
        for h in self.converse(message, history, learner):
            yield h, "", gr.skip()
        yield gr.skip(), "", outline_panel(self.tutor, learner)

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
        self.room.stop(self.room.learner(request))  # only this session's own turns

    def restore(self, request: gr.Request = None) -> tuple[Any, str]:
        """On page load: this session's conversation and outline, kept across reloads."""
        learner = self.room.learner(request)
        history = list(self.saved(learner)) if learner else []
        return (history if history else gr.skip()), outline_panel(self.tutor, learner)

    def attach(self, box: str, path: str | None, request: gr.Request = None) -> str:
        return attach_upload(box, path, self.tutor.registry.tools, self.owns(self.room.learner(request) or ""))

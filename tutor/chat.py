"""The turn pipeline: a message and a session in, replies out. Plain Python, no Gradio.

    /name args      -> calls.run_command: the tool's reply (a stream of replies for long work)
    /help [NAME]    -> the tool list, or one tool's parameters
    anything else   -> the turn handlers in order: lesson navigation and quizzes, then those plugins
                       register (register_turn_handlers), then free questions (which answer anything)

This module imports what it dispatches to; nothing below it imports it back.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator

from .calls import guarded, run_command
from .context import Session
from .lessons.tutoring import chat_turn, search_turn
from .tools import Reply

# Handlers for messages that are not commands, tried in order; each returns replies or None.
# Free-question search answers anything, so it stays last: plugins' handlers go before it.
TurnHandler = Callable[[str, Session], "Iterator[Reply] | list[Reply] | None"]
TURN_HANDLERS: list[TurnHandler] = [chat_turn, search_turn]


def turn_handlers(session: Session) -> list[TurnHandler]:
    """The built-in handlers with the ones plugins registered, in the order they are tried."""
    *first, last = TURN_HANDLERS
    return [*first, *(handler for _, handler in session.tutor.registry.turn_handlers), last]


def respond(message: str, session: Session, cancel: threading.Event | None = None) -> Iterator[Reply]:
    """Every reply to one message. Never raises: problems become readable error replies."""
    yield from guarded(_dispatch(message or "", session, cancel), message or "")


def _dispatch(message: str, session: Session, cancel: threading.Event | None) -> Iterator[Reply]:
    text = message.strip()
    if not text:
        yield Reply(text="Type a question, a lesson command such as `start`, or a tool such as `/help`.")
        return
    if text.startswith("/"):
        yield from run_command(message.lstrip(), session, cancel)
        return
    for handler in turn_handlers(session):
        replies = handler(text, session)
        if replies is not None:
            yield from replies
            return
    yield Reply(text="I answer tool commands; type `/help` to see them all, e.g. "
                     "`/count The cat sat on the mat`.", buttons=["/help"])


def final(message: str, session: Session) -> Reply:
    """The last reply of a turn (what the terminal and lesson checks use)."""
    last = Reply()
    for last in respond(message, session):
        pass
    return last

"""One tutor turn: a message and a session in, replies out. Plain Python, no Gradio.

    /name args      -> the tool's reply (a stream of replies for long work)
    /help [NAME]    -> the tool list, or one tool's parameters
    anything else   -> the turn handlers registered below (lessons and search plug in here)
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Callable, Iterator

from . import commands
from .context import Session
from .tools import Reply, ToolError

log = logging.getLogger("tutor.chat")

# Handlers for messages that are not commands, tried in order; each returns replies or None.
# The lessons engine adds navigation ("next", "back") and free-question search here.
TurnHandler = Callable[[str, Session], "Iterator[Reply] | list[Reply] | None"]
TURN_HANDLERS: list[TurnHandler] = []


def respond(message: str, session: Session, cancel: threading.Event | None = None) -> Iterator[Reply]:
    """Every reply to one message. Never raises: problems become readable error replies."""
    try:
        yield from _dispatch(message or "", session, cancel)
    except ToolError as e:
        yield Reply(text=str(e), error=True)
    except Exception as e:  # a bug, not the learner's fault: say so, log the traceback
        log.exception("turn failed for message %r", message[:200])
        yield Reply(text=f"Something went wrong inside the tutor ({type(e).__name__}: {e}). "
                         "It has been logged; try again or try another command.", error=True)


def _dispatch(message: str, session: Session, cancel: threading.Event | None) -> Iterator[Reply]:
    tutor = session.tutor
    text = message.strip()
    if not text:
        yield Reply(text="Type a question, a lesson command such as `start`, or a tool such as `/help`.")
        return
    if text.startswith("/"):
        name = text[1:].split(maxsplit=1)[0].lower() if len(text) > 1 else ""
        if name == "help":
            arg = text[1:].split(maxsplit=1)[1:]
            tools = tutor.registry.tools
            yield Reply(text=commands.help_text(tools, arg[0].strip() if arg else None),
                        data={"tools": sorted(tools)} if not arg else {"tool": arg[0].strip()})
            return
        call = commands.parse(message.lstrip(), tutor.registry.tools, tutor.registry,
                              tutor.settings.max_input_chars)
        yield from run_tool(call, session, cancel)
        return
    for handler in TURN_HANDLERS:
        replies = handler(text, session)
        if replies is not None:
            yield from replies
            return
    yield Reply(text="I answer tool commands; type `/help` to see them all, e.g. "
                     "`/count The cat sat on the mat`.", buttons=["/help"])


def run_tool(call: commands.ToolCall, session: Session, cancel: threading.Event | None = None) -> Iterator[Reply]:
    """Run one parsed tool call. A generator tool streams: it yields progress replies marked
    done=False and its final reply last."""
    ctx = session.context(cancel)
    tool = call.tool
    try:
        result = tool.func(ctx, **call.args)
        if inspect.isgenerator(result):
            yield from result
            return
        if not isinstance(result, Reply):
            result = Reply(text=str(result) if result is not None else "(no reply)")
        yield result
    except ToolError as e:
        yield Reply(text=str(e), error=True)
    except Exception as e:
        log.exception("tool /%s (plugin %s) failed", tool.name, tool.plugin)
        yield Reply(text=f"/{tool.name} failed: {type(e).__name__}: {e}. This is a bug in the plugin "
                         f"{tool.plugin!r}, not in what you typed; it has been logged.", error=True)


def final(message: str, session: Session) -> Reply:
    """The last reply of a turn (what the terminal and lesson checks use)."""
    last = Reply()
    for last in respond(message, session):
        pass
    return last


# Built-in handlers: lesson navigation and quiz answers first, then free questions.
from .lessons import chat_turn as _lessons_turn  # noqa: E402  (they import chat lazily)
from .search import search_turn as _search_turn  # noqa: E402

TURN_HANDLERS += [_lessons_turn, _search_turn]

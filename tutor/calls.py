"""Running a slash command: `/help`, or a parsed tool call run with its Context. Below the turn
pipeline (chat.py), so lesson steps and checks run tools exactly as a typed command does."""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Iterator

from . import commands
from .context import Session
from .tools import Reply, ToolError, valid_unicode
from .tokenizers.saved import OwnedView

log = logging.getLogger("tutor.chat")  # the logger these messages always had


def guarded(replies: Iterator[Reply], message: str) -> Iterator[Reply]:
    """`replies`, with any exception turned into a readable error reply (the turn never raises)."""
    try:
        yield from replies
    except ToolError as e:
        yield Reply(text=str(e), error=True)
    except Exception as e:  # a bug, not the learner's fault: say so, log the traceback
        log.exception("turn failed for message %r", message[:200])
        yield Reply(text=f"Something went wrong inside the tutor ({type(e).__name__}: {e}). "
                         "It has been logged; try again or try another command.", error=True)


def run_command(text: str, session: Session, cancel: threading.Event | None = None) -> Iterator[Reply]:
    """The replies to one `/name args` line (`/help [NAME]` lists the tools or one tool's parameters)."""
    tutor = session.tutor
    if commands.command_name(text) == "help":
        arg = text.strip()[1:].split(maxsplit=1)[1:]
        tools = tutor.registry.tools
        yield Reply(text=commands.help_text(tools, arg[0].strip() if arg else None),
                    data={"tools": sorted(tools)} if not arg else {"tool": arg[0].strip()})
        return
    # the registry as this learner sees it: their own saved tokenizers are names too
    view = OwnedView(tutor.registry, tutor.settings, session.learner_id)
    call = commands.parse(text.lstrip(), tutor.registry.tools, view, tutor.settings.max_input_chars)
    yield from run_tool(call, session, cancel)


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
    except UnicodeEncodeError as e:
        yield _surrogate_answer(call) or _plugin_bug(call, e)
    except Exception as e:
        yield _plugin_bug(call, e)


def _surrogate_answer(call: commands.ToolCall) -> Reply | None:
    """The clear answer when a tool met a lone surrogate the learner typed (the only place one
    comes from: no tool makes them), naming the argument; None if no argument holds one."""
    for name, value in call.args.items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str):
                try:
                    valid_unicode(text, f"--{name.replace('_', '-')}")
                except ToolError as e:
                    return Reply(text=str(e), error=True)
    return None


def _plugin_bug(call: commands.ToolCall, e: Exception) -> Reply:
    tool = call.tool
    log.exception("tool /%s (plugin %s) failed", tool.name, tool.plugin)
    return Reply(text=f"/{tool.name} failed: {type(e).__name__}: {e}. This is a bug in the plugin "
                      f"{tool.plugin!r}, not in what you typed; it has been logged.", error=True)


def last_reply(line: str, session: Session) -> Reply:
    """The final reply to one command line (what lesson checks read)."""
    if not line.strip().startswith("/"):
        return Reply(text=f"{line!r} is not a tool command (it must start with /).", error=True)
    last = Reply()
    for last in guarded(run_command(line, session), line):
        pass
    return last

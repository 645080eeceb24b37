"""Endpoints for clients: `/ask` (one message, the final reply), `/chat` is in turns.py, and one
endpoint per tool whose signature mirrors the tool's schema (what `--mcp` lists as MCP tools)."""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable

import gradio as gr

from .. import chat
from ..context import Tutor
from ..tools import Reply, Tool
from .learners import learner_id
from .palette import palette_command
from .render import reply_markdown
from .uploads import check_file_args


def api_endpoints(tutor: Tutor) -> None:
    """`/ask` for clients and tests, and one endpoint per tool (what `--mcp` lists as MCP tools)."""
    def ask(message: str, learner: str = "", request: gr.Request = None) -> dict:
        """One message in, the final reply out: {"text": markdown, "data": facts, "error": bool}.

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            learner: a learner id to keep state between calls (optional)
        """
        who = learner_id(learner or None, request)
        refused = check_file_args(message, tutor)
        reply = Reply(text=refused, error=True) if refused else chat.final(message, tutor.session(who))
        return {"text": reply_markdown(reply), "data": reply.data, "error": reply.error}

    gr.api(ask, api_name="ask")
    for tool in tutor.registry.tools.values():
        # the same name and description the explainer offers a model (tools.openai_tool_schema)
        gr.api(tool_endpoint(tool, tutor), api_name=tool.api_name, api_description=tool.api_description)


_PY = {str: str, int: int, float: float, bool: bool, list: list[str]}


def tool_endpoint(tool: Tool, tutor: Tutor) -> Callable[..., str]:
    """A function whose signature mirrors the tool's schema (so Gradio's API and MCP listing show
    the same parameters as Tool.json_schema()); it builds the command line and runs one turn."""
    def run(*args: Any, request: gr.Request = None, **kwargs: Any) -> str:
        bound = sig.bind_partial(*args, **kwargs)
        values = [bound.arguments.get(p.name) for p in tool.params]
        line = palette_command(tool, values)
        refused = check_file_args(line, tutor)
        reply = Reply(text=refused, error=True) if refused else chat.final(line, tutor.session(
            learner_id(None, request) if getattr(request, "username", None) else "mcp"))
        out = reply.plain()
        if reply.data:
            out += "\n\ndata: " + json.dumps(reply.data, ensure_ascii=False, default=str)
        return ("error: " if reply.error else "") + out

    params = []
    for p in tool.params:
        default = inspect.Parameter.empty if p.required else (p.default if p.default is not None else "")
        if p.type is bool and default is inspect.Parameter.empty:
            default = False
        params.append(inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        default=default, annotation=_PY[p.type]))
    sig = inspect.Signature(params, return_annotation=str)
    run.__signature__ = sig  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: _PY[p.type] for p in tool.params} | {"return": str}
    run.__name__ = tool.api_name
    args_doc = "\n".join(f"    {p.name}: {p.help or p.type_name}" for p in tool.params)
    run.__doc__ = f"{tool.summary}\n\nArgs:\n{args_doc}\n" if tool.params else tool.summary
    return run

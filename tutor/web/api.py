"""Endpoints for clients: `/ask` (one message, the final reply), `/chat` is in turns.py, and one
endpoint per tool whose signature mirrors the tool's schema (what `--mcp` lists as MCP tools).

`/ask` is served twice: as a Gradio endpoint (gradio_client, `/gradio_api/call/ask`), and as a
plain JSON route, `POST {path}/api/ask`, for a course site's server or any HTTP client. The plain
route skips Gradio's queue and its per-call session (cheap now: tutor/web/sessions.py), and
answers in one response instead of an event stream: 3.6 ms of server CPU per call against 10.8 ms
through Gradio's route. Both act for the same caller and run the turn in the same lane."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr
from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from ..context import Tutor
from ..tools import Reply, Tool
from .classroom import Classroom
from .palette import palette_command
from .render import reply_markdown, sanitize_markdown
from .turns import SIGN_IN
from .uploads import check_file_args


def answer(tutor: Tutor, room: Classroom, message: str, token: str | None, request: Any) -> dict:
    """One /ask turn for the caller `request` names (with the token it was given last time)."""
    who, token = room.caller(request, token or None)
    refused = SIGN_IN if who is None else check_file_args(message, tutor, lambda p: room.uploads.owns(who, p))
    reply = Reply(text=refused, error=True) if refused else room.final(message, who)
    markdown = reply_markdown(reply)
    return {"text": markdown, "html": sanitize_markdown(markdown), "data": reply.data, "error": reply.error,
            "learner": token}


def api_endpoints(tutor: Tutor, room: Classroom) -> None:
    """`/ask` for clients and tests, and one endpoint per tool (what `--mcp` lists as MCP tools)."""
    def ask(message: str, learner: str = "", request: gr.Request = None) -> dict:
        """One message in, the final reply out: {"text": markdown, "html": the same made safe to
        show, "data": facts, "error": bool, "learner": the token to send next time}.

        Args:
            message: what a learner would type, e.g. /count The cat sat on the mat
            learner: the token this server returned last time, to keep state between calls (optional)
        """
        return answer(tutor, room, message, learner, request)

    gr.api(ask, api_name="ask", concurrency_limit=None)
    for tool in tutor.registry.tools.values():
        # the same name and description the explainer offers a model (tools.openai_tool_schema).
        # Not queued: MCP then calls it in-process with the caller's own request (and its signed
        # header), instead of through a loopback client that carries no login.
        gr.api(tool_endpoint(tool, tutor, room), api_name=tool.api_name, api_description=tool.api_description,
               queue=False)


class AskBody(BaseModel):
    """The plain route's request: what a learner would type, and the token returned last time."""

    model_config = ConfigDict(extra="forbid")
    message: str
    learner: str = ""


@dataclass
class _Caller:
    """What identity needs from a request (tutor/web/learners.py), with the course login's name
    when the site checks logins itself (`mount(..., learner_from=...)`)."""

    headers: Any
    cookies: Any
    username: str | None = None


def ask_route(fastapi_app: Any, path: str, tutor: Tutor, room: Classroom,
              learner_from: Callable[[Any], str | None] | None = None) -> None:
    """`POST {path}/api/ask` with {"message": ..., "learner": token}: the /ask reply as JSON.
    Added before the page is mounted, so the mount (which takes every path under `path`) does
    not hide it. The turn runs in FastAPI's thread pool and waits in its lane like any other."""
    async def ask_http(body: AskBody, request: Request) -> Response:
        user = learner_from(request) if learner_from is not None else None
        if inspect.isawaitable(user):  # Gradio's auth_dependency may be async too
            user = await user
        if learner_from is not None and not user:
            raise HTTPException(status_code=401, detail=SIGN_IN)
        out = await run_in_threadpool(answer, tutor, room, body.message, body.learner,
                                      _Caller(request.headers, request.cookies, user))
        return Response(json.dumps(out, ensure_ascii=False, default=str), media_type="application/json")

    fastapi_app.add_api_route(path.rstrip("/") + "/api/ask", ask_http, methods=["POST"], name="tutor_ask",
                              include_in_schema=False)


_PY = {str: str, int: int, float: float, bool: bool, list: list[str]}


def tool_endpoint(tool: Tool, tutor: Tutor, room: Classroom) -> Callable[..., str]:
    """A function whose signature mirrors the tool's schema (so Gradio's API and MCP listing show
    the same parameters as Tool.json_schema()); it builds the command line and runs one turn
    for the caller's own identity: a login, its session, or a new one per call."""
    def run(*args: Any, **kwargs: Any) -> str:
        bound = sig.bind_partial(*args, **kwargs)
        values = [bound.arguments.get(p.name) for p in tool.params]
        line = palette_command(tool, values)
        who, _ = room.caller(bound.arguments.get("request"))
        refused = SIGN_IN if who is None else check_file_args(line, tutor, lambda p: room.uploads.owns(who, p))
        reply = Reply(text=refused, error=True) if refused else room.final(line, who)
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
    # The request comes last and typed, so Gradio passes it in (and leaves it out of the schema).
    params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                    annotation=gr.Request))
    sig = inspect.Signature(params, return_annotation=str)
    run.__signature__ = sig  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: _PY[p.type] for p in tool.params} | {"request": gr.Request, "return": str}
    run.__name__ = tool.api_name
    args_doc = "\n".join(f"    {p.name}: {p.help or p.type_name}" for p in tool.params)
    run.__doc__ = f"{tool.summary}\n\nArgs:\n{args_doc}\n" if tool.params else tool.summary
    return run

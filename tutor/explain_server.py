"""The explainer on an OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama,
llama.cpp's server, `transformers serve`, OpenAI), through the `openai` client.

One explanation is a few rounds of one streamed request each: the model writes, or asks for
tool calls; each call runs as if the learner had typed it (its replies go to the chat) and its
`data` goes back to the model; after MAX_TOOL_ROUNDS the model must answer without tools.
Every failure the client can meet becomes an ExplainerFailed with a line for the learner, and
the learner then gets the retrieval answer. Nothing waits without a bound: the client never
retries, connecting has CONNECT_S, each read waits at most what was left of the answer's time
(TUTOR_LLM_TIMEOUT) when its request began, and the stream is dropped at the first chunk after
that time is spent. (A blocked read cannot be interrupted from another thread, so a server that
trickles just under the read timeout can take an answer to twice TUTOR_LLM_TIMEOUT, never more.)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import urlsplit

import httpx
import openai

from .commands import command_line
from .explain_prompt import (ExplainerFailed, Passage, RunCommand, answer_reply, data_json, fallback_reply,
                             partial_reply, prompt_messages)
from .remote import openai_client
from .tools import Reply, ToolError, openai_tool_schema

if TYPE_CHECKING:
    from .tools import Tool

log = logging.getLogger("tutor.explainer")

MAX_TOOL_ROUNDS = 3  # rounds in which the model may call tools; the next one must answer
MAX_CALLS = 4  # tool calls run per round; the model is told the rest were not run
MAX_ANSWER_TOKENS = 400  # one to three short paragraphs; also bounds a model that would not stop
CONNECT_S = 5.0  # connecting to the server (never more than the answer's whole time)
PARTIAL_EVERY_S = 0.08  # how often the chat is redrawn while tokens stream


class _Stop(Exception):
    """Raised inside a stream when the answer's time is spent."""


class ServerExplainer:
    """Answers with a model on an OpenAI-compatible server. One per process; thread-safe."""

    def __init__(self, url: str, model: str | None, api_key: str | None, timeout: float,
                 tools: list["Tool"] | None = None, max_tokens: int = MAX_ANSWER_TOKENS):
        self.url, self.timeout, self.max_tokens = url.rstrip("/"), float(timeout), max_tokens
        self.tools = {t.api_name: t for t in tools or []}
        self.schemas = [openai_tool_schema(t) for t in self.tools.values()]
        # max_retries=0: a retry after a 429 or a timeout would wait where the learner cannot see it
        self.client = openai_client(self.url, api_key, max_retries=0)
        self._model = model
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc or self.url

    @property
    def label(self) -> str:
        name = self._model or "the model"
        if name.startswith("/"):  # a server started on a local folder lists the folder's path
            name = name.rstrip("/").rsplit("/", 1)[-1]
        return f"written by {name} (model server at {self.host})"

    def _info(self) -> dict[str, Any]:
        return {"model": self._model, "server": self.url}

    def explain(self, question: str, passages: list[Passage], recent: list[tuple[str, dict]],
                fallback: Reply, run_command: RunCommand) -> Iterator[Reply]:
        if not passages:  # not covered: say so honestly rather than let the model improvise
            yield fallback
            return
        deadline = time.monotonic() + self.timeout
        calls: list[dict] = []
        try:
            model = self._model_name(deadline)
            messages = prompt_messages(question, passages, recent, tools=bool(self.schemas))
            answer = yield from self._converse(model, messages, deadline, run_command, calls)
        except ExplainerFailed as failure:
            log.warning("explainer fell back: %s", failure.line)
            yield fallback_reply(failure, fallback, {**self._info(), "tool_calls": calls})
            return
        yield answer_reply(answer, passages, self.label, fallback, self._info(), calls)

    def _model_name(self, deadline: float) -> str:
        """TUTOR_LLM_MODEL, or the first model the server lists (asked once)."""
        with self._lock:
            if self._model:
                return self._model
        page = _call(lambda: self.client.models.list(timeout=_timeout(deadline)), self)
        names = [m.id for m in getattr(page, "data", None) or [] if getattr(m, "id", None)]
        if not names:
            raise ExplainerFailed("malformed", f"The model server at {self.host} lists no models. "
                                  "Set TUTOR_LLM_MODEL to the name of the model it serves.")
        with self._lock:
            self._model = self._model or names[0]
            return self._model

    def _converse(self, model: str, messages: list[dict], deadline: float, run_command: RunCommand,
                  calls: list[dict]) -> Iterator[Reply]:
        """Rounds until the model answers in words; returns the answer (the generator's value)."""
        offer = bool(self.schemas)
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            tools = self.schemas if offer and round_ < MAX_TOOL_ROUNDS else None
            try:
                text, asked = yield from self._round(model, messages, tools, deadline)
            except ExplainerFailed as failure:
                if failure.kind != "refused" or not tools:
                    raise
                # vLLM without --enable-auto-tool-choice, Ollama with a model without tool support:
                # HTTP 400 because of `tools`. Ask again without them.
                log.info("server refused tools (%s); asking without them", failure.line)
                offer = False
                text, asked = yield from self._round(model, messages, None, deadline)
            if not asked:
                if not text.strip():
                    raise ExplainerFailed("malformed", f"The model server at {self.host} sent a reply with "
                                          "no answer in it.")
                return text
            messages.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in asked]})
            for i, c in enumerate(asked):  # every call gets an answer, as the API requires
                result = (yield from self._run_call(c, run_command, calls)) if i < MAX_CALLS else json.dumps(
                    {"error": f"Not run: at most {MAX_CALLS} tool calls at once."})
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": result})
        raise ExplainerFailed("malformed", f"The model at {self.host} kept asking for tools and never answered.")

    def _round(self, model: str, messages: list[dict], tools: list[dict] | None,
               deadline: float) -> Iterator[Reply]:
        """One streamed request. Yields partial replies; returns (text, tool calls asked for)."""
        extra = {"tools": tools} if tools else {}
        stream = _call(lambda: self.client.chat.completions.create(
            model=model, messages=messages, stream=True, max_tokens=self.max_tokens, timeout=_timeout(deadline),
            **extra), self)
        text, asked, shown = "", {}, 0.0
        with stream:
            chunks = iter(stream)
            while True:
                chunk = _call(lambda: next(chunks, None), self)
                if chunk is None:
                    break
                if time.monotonic() > deadline:
                    raise ExplainerFailed("slow", f"The model server at {self.host} was too slow: the answer "
                                          f"was not finished after {self.timeout:g} s (TUTOR_LLM_TIMEOUT).")
                delta = _delta(chunk, self.host)
                if delta is None:
                    continue
                text += delta.get("content") or ""
                _add_tool_calls(asked, delta.get("tool_calls") or [], self.host)
                if text and time.monotonic() - shown > PARTIAL_EVERY_S:
                    shown = time.monotonic()
                    yield partial_reply(text, self.label)
        return text, [asked[i] for i in sorted(asked)]

    def _run_call(self, call: dict, run_command: RunCommand, calls: list[dict]) -> Iterator[Reply]:
        """Run one tool call as the learner's command; returns what goes back to the model."""
        tool = self.tools.get(call["name"])
        try:
            if tool is None:
                raise ToolError(f"There is no tool {call['name']!r}. Tools: {', '.join(self.tools)}.")
            try:
                args = json.loads(call["arguments"] or "{}")
            except json.JSONDecodeError as e:
                raise ToolError(f"The arguments were not JSON ({e}); send an object of the parameters.") from None
            if not isinstance(args, dict):
                raise ToolError("The arguments must be a JSON object of the tool's parameters.")
            # A model never names a file for a tool to read: only the learner uploads one (in the
            # page a typed server path is refused too). It may suggest the command instead.
            named = [p.name for p in tool.params if p.file and args.get(p.name)]
            if named:
                raise ToolError(f"--{named[0]} names a file to read; only the learner can give one (by "
                                "uploading it). Suggest the command to the learner instead of running it.")
            line = command_line(tool, args)
        except ToolError as e:  # the model's mistake: tell it, so it can correct itself
            return json.dumps({"error": str(e)})
        last = Reply()
        for last in run_command(line):
            yield last  # the tool's output shows in the chat as if the learner had typed the command
        calls.append({"command": line, "error": last.error})
        return json.dumps({"error": last.text}) if last.error else data_json(last.data or {"text": last.text})


def _timeout(deadline: float) -> httpx.Timeout:
    left = max(deadline - time.monotonic(), 0.05)
    return httpx.Timeout(left, connect=min(CONNECT_S, left))


def _delta(chunk: Any, host: str) -> dict | None:
    """The first choice's delta as a dict, None for a chunk without one (a usage chunk)."""
    choices = getattr(chunk, "choices", None)
    if choices is None:
        raise ExplainerFailed("malformed", f"The model server at {host} sent a stream chunk that is not a "
                              "chat completion (it has no `choices`).")
    if not choices:
        return None
    delta = getattr(choices[0], "delta", None)
    if delta is None:
        return None
    return delta.model_dump() if hasattr(delta, "model_dump") else dict(delta)


def _add_tool_calls(asked: dict[int, dict], parts: list[dict], host: str) -> None:
    """Streamed tool calls come in pieces: the first names the function, later ones add arguments."""
    for part in parts:
        index = part.get("index") or 0
        call = asked.setdefault(index, {"id": "", "name": "", "arguments": ""})
        fn = part.get("function") or {}
        call["id"] = part.get("id") or call["id"] or f"call_{index}"
        call["name"] += fn.get("name") or ""
        call["arguments"] += fn.get("arguments") or ""
    for call in asked.values():
        if len(call["arguments"]) > 100_000:
            raise ExplainerFailed("malformed", f"The model at {host} sent tool arguments over 100,000 characters.")


def _call(fn, ex: ServerExplainer):
    """Run one client call; every error the client raises becomes an ExplainerFailed."""
    host, t = ex.host, ex.timeout
    try:
        return fn()
    except ExplainerFailed:
        raise
    except openai.APITimeoutError:
        raise ExplainerFailed("timeout", f"The model server at {host} did not answer in time "
                              f"({t:g} s, TUTOR_LLM_TIMEOUT).") from None
    except openai.APIConnectionError as e:
        cause = e.__cause__ or e
        raise ExplainerFailed("unreachable", f"The model server at {host} cannot be reached "
                              f"({type(cause).__name__}: {str(cause)[:120] or 'connection failed'}). "
                              "Check that it is running and TUTOR_LLM_URL.") from None
    except openai.RateLimitError as e:
        after = e.response.headers.get("retry-after")
        raise ExplainerFailed("rate_limit", f"The model server at {host} is rate-limiting the tutor "
                              f"(HTTP 429: {_message(e)})." + (f" It asks to wait {after} s." if after else "")
                              ) from None
    except openai.APIStatusError as e:
        kind = "refused" if e.status_code == 400 else "server_error"
        hint = {401: " Check TUTOR_LLM_API_KEY.", 403: " Check TUTOR_LLM_API_KEY.",
                404: " Check TUTOR_LLM_URL (it usually ends in /v1) and TUTOR_LLM_MODEL."}.get(e.status_code, "")
        raise ExplainerFailed(kind, f"The model server at {host} answered HTTP {e.status_code}: "
                              f"{_message(e)}.{hint}") from None
    except (openai.APIError, ValueError, KeyError, TypeError, AttributeError) as e:
        # APIResponseValidationError, a stream line that is not JSON, a chunk of the wrong shape
        raise ExplainerFailed("malformed", f"The model server at {host} sent a reply the tutor cannot read "
                              f"({type(e).__name__}: {str(e)[:120]}).") from None
    except httpx.TimeoutException:  # a read that stalls mid-stream (the client wraps only the request)
        raise ExplainerFailed("timeout", f"The model server at {host} stopped sending its answer "
                              f"(nothing within the time left of {t:g} s, TUTOR_LLM_TIMEOUT).") from None
    except httpx.HTTPError as e:  # a read that fails mid-stream, outside the client's own wrapping
        raise ExplainerFailed("unreachable", f"The connection to the model server at {host} broke "
                              f"({type(e).__name__}: {str(e)[:120]}).") from None


def _message(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    err = body.get("error", body)
    msg = err.get("message") if isinstance(err, dict) else err
    return str(msg or e.message)[:200].rstrip(".")

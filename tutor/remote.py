"""An OpenAI-compatible inference server as a backend: vLLM or SGLang for a class on a GPU,
`transformers serve --continuous-batching` on one machine.

`Server` is the reusable client part (any tool that wants a served model's text: /generate,
an explainer): streamed completions and chat, each token with its log-probability and its top
alternatives when the server sends them (`logprobs` / `top_logprobs`; vLLM and SGLang do,
`transformers serve` 5.x ignores the request and sends text only). Errors become ToolErrors
that say what to check.

    server = Server("http://127.0.0.1:8000/v1")
    for piece in server.complete("The capital of France is", max_tokens=5, temperature=0):
        print(piece.text, piece.p)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

from .tools import ToolError


@dataclass
class Piece:
    """One streamed token (or text chunk, when the server sends no logprobs)."""

    text: str
    p: float | None = None  # its probability, from the server's logprob
    top: list[tuple[str, float]] = field(default_factory=list)  # alternatives (text, probability)


@dataclass
class Finish:
    """The end of a stream: 'stop' (end-of-text or a stop string) or 'length' (max_tokens)."""

    reason: str


def openai_client(url: str, key: str | None, **options: Any) -> Any:
    """The `openai` client for the server at `url` (`options`: timeout, max_retries); the one
    place both seams, generation (Server) and the explainer, build it."""
    from openai import OpenAI  # imported here: a tutor with no server configured never needs it

    # a local server wants no key; the client insists on some string
    return OpenAI(base_url=url.rstrip("/"), api_key=key or "not-needed", **options)


class Server:
    """A client for one OpenAI-compatible server (the `openai` package underneath)."""

    def __init__(self, url: str, model: str | None = None, key: str | None = None, timeout: float = 120.0):
        self.url = url.rstrip("/")
        self._model = model
        self.client = openai_client(self.url, key, timeout=timeout, max_retries=1)

    @classmethod
    def for_generation(cls, settings: Any) -> "Server | None":
        """The server TUTOR_GENERATION_URL names, or None for the local decoder."""
        if not settings.generation_url:
            return None
        key = settings.generation_key.get_secret_value() if settings.generation_key else None
        return cls(settings.generation_url, settings.generation_model, key)

    @cached_property
    def model(self) -> str:
        """The model name to ask for: the one configured, else the first the server lists."""
        if self._model:
            return self._model
        models = self._call(lambda: list(self.client.models.list()))
        if not models:
            raise ToolError(f"The generation server at {self.url} lists no models. Name one with "
                            "TUTOR_GENERATION_MODEL.")
        return models[0].id

    def complete(self, prompt: str, max_tokens: int, top: int = 5, **sampling: Any) -> Iterator[Piece | Finish]:
        """Continue `prompt` as plain text (no chat template): /v1/completions, streamed."""
        stream = self._call(lambda: self.client.completions.create(
            model=self.model, prompt=prompt, max_tokens=max_tokens, stream=True, logprobs=top or None,
            **_sampling(sampling)))
        for chunk in self._chunks(stream):
            for choice in chunk.choices:
                yield from _completion_pieces(choice)
                if choice.finish_reason:
                    yield Finish(choice.finish_reason)

    def chat(self, messages: list[dict], max_tokens: int, top: int = 5, **sampling: Any) -> Iterator[Piece | Finish]:
        """Answer `messages` with the server's own chat template: /v1/chat/completions, streamed."""
        stream = self._call(lambda: self.client.chat.completions.create(
            model=self.model, messages=messages, max_tokens=max_tokens, stream=True, logprobs=bool(top),
            top_logprobs=top or None, **_sampling(sampling)))
        for chunk in self._chunks(stream):
            for choice in chunk.choices:
                yield from _chat_pieces(choice)
                if choice.finish_reason:
                    yield Finish(choice.finish_reason)

    def _call(self, fn: Any) -> Any:
        import openai

        try:
            return fn()
        except openai.APIConnectionError as e:
            raise ToolError(f"The generation server at {self.url} did not answer ({e}). Check that it runs, or "
                            "unset TUTOR_GENERATION_URL to generate on this machine.") from e
        except openai.APIStatusError as e:
            raise ToolError(f"The generation server at {self.url} refused the request: HTTP {e.status_code} "
                            f"{str(e.body or e.message)[:300]}") from e

    def _chunks(self, stream: Any) -> Iterator[Any]:
        import openai

        try:
            yield from stream
        except openai.APIError as e:
            raise ToolError(f"The generation server at {self.url} broke off the stream: {e}") from e
        finally:
            stream.close()  # a reader that stops early (Stop button) ends the request on the server


def _sampling(options: dict) -> dict:
    """Only the options that are set: a server applies its own defaults to the rest
    (`extra_body` carries what OpenAI's schema lacks, e.g. vLLM's top_k)."""
    return {k: v for k, v in options.items() if v is not None and v != {}}


def _p(logprob: float | None) -> float | None:
    return None if logprob is None else math.exp(logprob)


def _completion_pieces(choice: Any) -> Iterator[Piece]:
    """/v1/completions: logprobs.tokens[i] with token_logprobs[i] and top_logprobs[i] {text: lp}."""
    lp = choice.logprobs
    tokens = list(lp.tokens or []) if lp is not None else []
    if not tokens:
        if choice.text:
            yield Piece(choice.text)
        return
    values, tops = list(lp.token_logprobs or []), list(lp.top_logprobs or [])
    for i, text in enumerate(tokens):
        alts = tops[i] if i < len(tops) and tops[i] else {}
        yield Piece(text, _p(values[i] if i < len(values) else None),
                    sorted(((t, math.exp(v)) for t, v in alts.items()), key=lambda a: -a[1]))


def _chat_pieces(choice: Any) -> Iterator[Piece]:
    """/v1/chat/completions: logprobs.content[i] = {token, logprob, top_logprobs: [{token, logprob}]}."""
    content = getattr(choice.logprobs, "content", None) if choice.logprobs is not None else None
    if not content:
        text = choice.delta.content if choice.delta else None
        if text:
            yield Piece(text)
        return
    for item in content:
        yield Piece(item.token, _p(item.logprob), [(t.token, math.exp(t.logprob)) for t in item.top_logprobs or []])

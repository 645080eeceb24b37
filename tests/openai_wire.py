"""A real HTTP server on 127.0.0.1 that answers chat completions the way OpenAI-compatible servers
do on the wire, for the explainer's failure tests: each test gives it a `handler(request) -> what
to send`. It only ever sends what real servers send (status lines, OpenAI error bodies, SSE
chunks of the documented shape, stalls); where the content is a recording, the test says so.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator


def sse(chunks: list[dict]) -> list[bytes]:
    """Server-sent events as OpenAI streams them: `data: {json}` lines, then `data: [DONE]`."""
    return [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


def chunk(content: str | None = None, tool_calls: list | None = None, finish: str | None = None,
          model: str = "recorded-model") -> dict:
    """One `chat.completion.chunk` in the shape of OpenAI's API reference."""
    delta: dict[str, Any] = {}
    if content is not None:
        delta["content"] = content
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    return {"id": "chatcmpl-rec", "object": "chat.completion.chunk", "created": 1764547200, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def words(text: str) -> list[dict]:
    """A recorded answer streamed a word at a time, with the role first and a stop last."""
    first = chunk()
    first["choices"][0]["delta"] = {"role": "assistant", "content": ""}
    pieces = [chunk(w) for w in text.replace(" ", " \0").split("\0")]
    return [first, *pieces, chunk(finish="stop")]


class Send:
    """What to answer: a status, headers, a body (bytes or a list of byte chunks streamed with
    `gap` seconds between them), and `hang` seconds to wait after them before closing."""

    def __init__(self, status: int = 200, body: bytes | list[bytes] = b"", headers: dict | None = None,
                 gap: float = 0.0, hang: float = 0.0, before: float = 0.0):
        self.status, self.body, self.headers = status, body, headers or {}
        self.gap, self.hang, self.before = gap, hang, before


def stream(chunks: list[dict], gap: float = 0.0, hang: float = 0.0, done: bool = True) -> Send:
    """The chunks as an event stream; done=False leaves out the final `data: [DONE]`."""
    events = sse(chunks) if done else sse(chunks)[:-1]
    return Send(200, events, {"Content-Type": "text/event-stream"}, gap=gap, hang=hang)


def error(status: int, message: str, type_: str, code: str | None, headers: dict | None = None) -> Send:
    """An error as OpenAI sends it: {"error": {"message", "type", "param", "code"}}."""
    body = json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()
    return Send(status, body, {"Content-Type": "application/json", **(headers or {})})


class Wire:
    def __init__(self, handler: Callable[[dict], Send]):
        self.handler, self.requests = handler, []
        self.stop = threading.Event()  # set on exit: every stall ends, so the server can close


@contextmanager
def wire(handler: Callable[[dict], Send]) -> Iterator[tuple[str, Wire]]:
    """Serve `handler` on a free port; yields (base URL ending in /v1, the Wire with its requests)."""
    state = Wire(handler)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep the test output clean
            pass

        def do_GET(self):
            self._answer({"path": self.path})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            self._answer({"path": self.path, **body})

        def _answer(self, request: dict) -> None:
            state.requests.append(request)
            send = state.handler(request)
            if state.stop.wait(send.before):
                return
            self.send_response(send.status)
            streamed = isinstance(send.body, list)
            for k, v in send.headers.items():
                self.send_header(k, v)
            if streamed:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(send.body)))
            self.end_headers()
            try:
                for piece in send.body if streamed else [send.body]:
                    if streamed:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    else:
                        self.wfile.write(piece)
                    self.wfile.flush()
                    if send.gap and state.stop.wait(send.gap):
                        return
                if state.stop.wait(send.hang):
                    return
                if streamed:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: that is the point
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.monotonic()
    out = fn()
    return out, time.monotonic() - t

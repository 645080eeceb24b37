"""Start a tutor web site on 127.0.0.1 in a thread (a free port), for client and browser tests."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(app: Any, timeout: float = 30.0, root_path: str = "") -> Iterator[str]:
    """Serve a FastAPI/ASGI app until the block ends; yields its base URL. `root_path` is the
    public prefix a reverse proxy strips (uvicorn --root-path)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           root_path=root_path))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test web server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ---- Gradio's HTTP API, driven with httpx (one client per learner keeps its session cookie) ----

def call(client: Any, api_name: str, data: list, timeout: float = 120.0) -> list:
    """POST /gradio_api/call/NAME, then read its event stream: the outputs, or raise."""
    import json
    r = client.post(f"gradio_api/call/{api_name}", json={"data": data}, timeout=timeout)
    r.raise_for_status()
    event = r.json()["event_id"]
    kind = None
    with client.stream("GET", f"gradio_api/call/{api_name}/{event}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
                if kind == "error":
                    raise RuntimeError(f"{api_name} failed: {payload}")
                return json.loads(payload)
    raise RuntimeError(f"{api_name}: the stream ended without a result")


def fn_index(client: Any, api_name: str) -> int:
    """The index of a page event (private ones too), as the page's own JavaScript sends it."""
    deps = client.get("config").json()["dependencies"]
    return next(d["id"] for d in deps if d.get("api_name") == api_name)


def join(client: Any, api_name: str, data: list, timeout: float = 60.0) -> dict:
    """Run a page event the way the browser does (queue/join, then the session's stream)."""
    import json
    import uuid
    session = uuid.uuid4().hex
    r = client.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index(client, api_name),
                                                   "session_hash": session, "event_data": None}, timeout=timeout)
    r.raise_for_status()
    with client.stream("GET", f"gradio_api/queue/data?session_hash={session}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise RuntimeError(f"{api_name}: the stream ended without a result")

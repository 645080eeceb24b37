"""A real OpenAI-compatible server on 127.0.0.1 for tests and benchmarks: `transformers serve`
(the `transformers[serving]` extra) in its own process, on a free port, serving one model
folder. `serving(folder)` waits until the server answers /v1/models, yields its base URL
(".../v1"), and always ends the process (and its children), also on failure. The converted
SmolLM2 folder names its architectures in config.json (tutor/assets.py), which the server needs.

    with serving(smollm2_folder(assets)) as url:
        Server(url).complete("The cat", max_tokens=5)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from web_server import free_port


def serve_command(folder: Path, port: int, continuous_batching: bool = False) -> list[str]:
    # this environment's transformers, also where the venv's bin/ is not on PATH
    cmd = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder), "--host", "127.0.0.1",
           "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    return cmd + (["--continuous-batching"] if continuous_batching else [])


@contextmanager
def serving(folder: Path, timeout: float = 300.0, continuous_batching: bool = False,
            threads: int | None = None, log: Path | None = None) -> Iterator[str]:
    """`log`: where the server's output is kept (default: a temporary file, removed at the end)."""
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = open(log, "w+") if log else tempfile.NamedTemporaryFile("w+", prefix="llm-server-", suffix=".log",
                                                                  delete=False)
    proc = subprocess.Popen(serve_command(folder, port, continuous_batching), stdout=out, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)  # its own group: we end it with all its children
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, url, timeout, Path(out.name))
        yield url
    finally:
        _end(proc)
        out.close()
        if not log:
            os.unlink(out.name)


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float, log: Path) -> None:
    """Poll /v1/models until it answers; the server's log is in the error when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"transformers serve did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
    except ProcessLookupError:  # the group ended between poll() and killpg
        pass

"""Start a real `transformers serve` (an OpenAI-compatible server) on 127.0.0.1 for a test or a
benchmark, serving the converted SmolLM2 folder; it waits for /health and always ends the
server's whole process group, whatever happens in the test.

    with transformers_serve(servable_smollm2(assets, tmp_path)) as url:   # url ends in /v1
        ...
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def servable_smollm2(assets: Path, workdir: Path) -> Path:
    """The converted SmolLM2 folder, with `architectures` in its config.json (what `transformers
    serve` needs to build the model). Older converted folders lack the key: then a copy is made in
    `workdir`, its config rewritten and every other file linked, never copied."""
    from tutor.assets import smollm2_folder

    folder = smollm2_folder(assets)
    config = json.loads((folder / "config.json").read_text())
    if config.get("architectures"):
        return folder
    copy = workdir / "smollm2-servable"
    copy.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.name != "config.json" and not (copy / f.name).exists():
            (copy / f.name).symlink_to(f)
    config["architectures"] = ["LlamaForCausalLM"]
    (copy / "config.json").write_text(json.dumps(config, indent=1))
    return copy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(model: Path | str, ready_s: float = 240.0, log: Path | None = None) -> Iterator[str]:
    """`transformers serve MODEL` on a free port of 127.0.0.1 (CPU); yields its base URL (…/v1)."""
    port = free_port()
    cmd = [sys.executable, "-c", "from transformers.cli.transformers import main; main()", "serve", str(model),
           "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"]
    out = open(log, "w") if log else subprocess.DEVNULL
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/health", ready_s, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)
        if log:
            out.close()


def _wait_ready(proc: subprocess.Popen, health: str, ready_s: float, log: Path | None) -> None:
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"transformers serve exited with {proc.returncode} before it was ready:\n{tail}")
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"transformers serve was not ready after {ready_s:g} s")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it has not ended in 10 s."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass

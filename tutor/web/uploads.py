"""Uploaded files: the only files a web learner can name, and only their own. An upload fills in
`--file` in the message box; a typed server path, or another learner's upload, is refused before
the tool runs.

Gradio stores an upload under its upload folder and answers with the path. `UploadGuard`, an
ASGI middleware in front of the app, notes which learner's request produced each path (the
`Ledger`), refuses an upload that would take the learner past their quota (or the server past its
cap) before reading it, and serves a file from the upload folder only to its owner. `Ledger.sweep`
deletes uploads past their age, so the folder stays bounded.

Gradio fetches every file a page shows from that same folder, so a figure a reply shows is
copied there too (`Ledger.show`) and noted as its learner's: served to them, to no one else,
and never counted against their upload quota.
"""

from __future__ import annotations

import json
import shlex
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote

import gradio as gr

from .. import commands
from ..context import Tutor
from ..tools import Tool


def upload_dir() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR); the only files a web learner can name."""
    from gradio import utils
    return Path(utils.get_upload_folder()).resolve()


def inside(path: str | Path, root: Path) -> bool:
    """Whether `path` resolves to somewhere under `root` (a resolved folder); False for a path
    that cannot be resolved (a NUL byte, a lone surrogate)."""
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def is_uploaded(path: str | Path) -> bool:
    return inside(path, upload_dir())


def accepted_suffixes(tools: dict[str, Tool]) -> list[str]:
    """Every suffix some tool's File parameter takes: what the Upload button offers."""
    return sorted({a for t in tools.values() for p in t.params if p.file for a in p.accept})


def file_taker(tools: dict[str, Tool], suffix: str, box_tool: str | None = None) -> tuple[str, str] | None:
    """(tool, parameter) to hand an upload with this suffix to: the typed command's own File
    parameter when it has one, else the first tool that accepts the suffix (a text goes to
    /finetune first), else None."""
    suffix = suffix.lower()

    def takes(t: Tool) -> str | None:
        return next((p.name for p in t.params if p.file and p.option and (not p.accept or suffix in p.accept)), None)
    if box_tool in tools and takes(tools[box_tool]):
        return box_tool, takes(tools[box_tool])
    order = sorted(tools.values(), key=lambda t: (t.name != "finetune", t.name))
    return next(((t.name, takes(t)) for t in order if takes(t)), None)


def attach_upload(box: str, path: str | None, tools: dict[str, Tool],
                  owns: Callable[[str], bool] = lambda path: True) -> str:
    """An uploaded file becomes `--file PATH` right after the command in the message box
    (options come before free text). An empty box, or a command that takes no such file, gets
    the first tool that takes this kind of file (an image: /patches, a recording: /spectrogram).
    `owns(path)`: whether the learner asking uploaded it themselves."""
    if not path:
        return box
    if not is_uploaded(path) or not owns(path):
        raise gr.Error("Only files you uploaded through this page can be used.")
    box = (box or "").strip()
    head, _, tail = box.partition(" ") if box.startswith("/") else ("", "", box)
    taker = file_taker(tools, Path(path).suffix, head[1:].lower() if head else None)
    if taker is None:
        raise gr.Error(f"No tool takes a {Path(path).suffix or 'file without a suffix'} file. "
                       f"Upload one of: {', '.join(accepted_suffixes(tools))}.")
    name, param = taker
    arg = f"--{param.replace('_', '-')} {shlex.quote(str(path))}"
    if head and head[1:].lower() == name:
        return f"{head} {arg}" + (f" {tail}" if tail else "")
    return f"/{name} {arg}" + (f" {tail}" if tail and not head else "")


def check_file_args(message: str, tutor: Tutor, owns: Callable[[str], bool] = lambda path: True) -> str | None:
    """In the web app a tool may only read files the learner uploaded (`owns(path)`): a typed
    server path, or another learner's upload, is refused. Returns the refusal text, or None when
    the command is fine (or not a command)."""
    text = message.strip()
    if not text.startswith("/"):
        return None
    try:
        call = commands.parse(text, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
    except Exception:  # parse problems are answered by chat.respond with a clear message
        return None
    for p in call.tool.params:
        value = call.args.get(p.name)
        if p.file and isinstance(value, str) and value and not (is_uploaded(value) and owns(value)):
            return (f"`--{p.name}` must be a file you uploaded through this page, not a path on the server "
                    f"or another learner's upload (got `{Path(value).name}`). Use the Upload file button; "
                    f"it fills in `--{p.name}` for you.")
    return None


# ---- who uploaded what: quota, owner, expiry --------------------------------------------------

@dataclass
class _Upload:
    learner: str
    size: int
    at: float


class Ledger:
    """Who uploaded what, when, and how much."""

    def __init__(self, quota_bytes: int, server_cap_bytes: int, max_age_s: float):
        self.quota, self.cap, self.max_age = quota_bytes, server_cap_bytes, max_age_s
        self.files: dict[Path, _Upload] = {}
        self.shown: dict[tuple[str, str], Path] = {}  # (learner, figure) -> its copy in the folder
        self.lock = threading.Lock()

    def used(self, learner: str | None = None) -> int:
        with self.lock:
            return sum(u.size for u in self.files.values() if learner is None or u.learner == learner)

    def refusal(self, learner: str, incoming: int) -> str | None:
        """Why an upload of `incoming` bytes is refused now, or None when it fits."""
        mine, everyone = self.used(learner), self.used()
        if mine + incoming > self.quota:
            return (f"Your uploads would pass your quota of {self.quota / 2**20:.0f} MB "
                    f"({mine / 2**20:.1f} MB used). Uploads are deleted after {self.max_age / 3600:g} h; "
                    "upload a smaller file or wait.")
        if everyone + incoming > self.cap:
            return "The server's upload space is full right now; try again later or ask the course's host."
        return None

    def claim(self, learner: str, path: str | Path, now: float | None = None) -> None:
        p = Path(path).resolve()
        size = p.stat().st_size if p.is_file() else 0
        with self.lock:
            self.files[p] = _Upload(learner, size, time.time() if now is None else now)

    def show(self, learner: str, source: str, upload_root: Path) -> str:
        """The path the page fetches a figure from: a copy in Gradio's folder (made once, again
        after a sweep), noted as this learner's with size 0 (a figure is not an upload)."""
        key = (learner, source)
        with self.lock:
            copy = self.shown.get(key)
        if copy is not None and copy.is_file():
            return str(copy)
        copy = upload_root / "shown" / uuid.uuid4().hex / Path(source).name
        copy.parent.mkdir(parents=True, exist_ok=True)
        staging = copy.with_name("." + copy.name)
        shutil.copyfile(source, staging)
        staging.replace(copy)  # whole or absent: a page never fetches half a figure
        with self.lock:
            self.shown[key] = copy
            self.files[copy] = _Upload(learner, 0, time.time())
        return str(copy)

    def owner(self, path: str | Path) -> str | None:
        try:
            p = Path(path).resolve()
        except (OSError, ValueError):
            return None
        with self.lock:
            u = self.files.get(p)
        return u.learner if u else None

    def owns(self, learner: str, path: str | Path) -> bool:
        return self.owner(path) == learner

    def sweep(self, upload_root: Path, now: float | None = None) -> int:
        """Delete uploads older than the maximum age (noted or not: a file left by an earlier run
        counts too). Returns how many files went."""
        now = time.time() if now is None else now
        gone = 0
        with self.lock:
            for p, u in list(self.files.items()):
                if now - u.at > self.max_age:
                    p.unlink(missing_ok=True)
                    del self.files[p]
                    gone += 1
        if upload_root.is_dir():
            for f in upload_root.rglob("*"):
                if f.is_file() and self.owner(f) is None and now - f.stat().st_mtime > self.max_age:
                    f.unlink(missing_ok=True)
                    gone += 1
            for d in sorted((d for d in upload_root.rglob("*") if d.is_dir()), key=lambda d: len(d.parts),
                            reverse=True):  # deepest first, so a folder emptied just now goes too
                if not any(d.iterdir()):
                    shutil.rmtree(d, ignore_errors=True)
        with self.lock:
            self.shown = {k: c for k, c in self.shown.items() if c in self.files}
        return gone


async def _reply(send: Any, status: int, text: str) -> None:
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class UploadGuard:
    """ASGI middleware: quota before an upload is read, ownership after, owner-only file route."""

    def __init__(self, app: Any, ledger: Ledger, learner_of: Callable[[Any], str | None],
                 upload_root: Callable[[], Path]):
        self.app, self.ledger, self.learner_of, self.upload_root = app, ledger, learner_of, upload_root

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.endswith("/gradio_api/upload") and scope.get("method") == "POST":
            return await self._upload(scope, receive, send)
        if "/gradio_api/file=" in path:
            target = unquote(path.split("/gradio_api/file=", 1)[1])
            if self._in_uploads(target) and self.ledger.owner(target) != self.learner_of(self._request(scope)):
                return await _reply(send, 403, "That file was uploaded by someone else.")
        await self.app(scope, receive, send)

    def _in_uploads(self, target: str) -> bool:
        return inside(target, self.upload_root())

    @staticmethod
    def _request(scope: dict) -> Any:
        from starlette.requests import Request
        return Request(scope)

    async def _upload(self, scope: dict, receive: Any, send: Any) -> None:
        learner = self.learner_of(self._request(scope))
        size = dict(scope.get("headers") or []).get(b"content-length", b"")
        if learner is None:
            return await _reply(send, 401, "Open the tutor's page first: uploads belong to a learner's session.")
        if not size.isdigit():
            return await _reply(send, 411, "An upload needs a Content-Length header.")
        refused = self.ledger.refusal(learner, int(size))
        if refused:
            return await _reply(send, 413, refused)
        start: dict = {}
        chunks: list[bytes] = []

        async def note(message: dict) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return  # held until the body is seen, so the paths are noted before the client has them
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                body = b"".join(chunks)
                if start.get("status") == 200:
                    try:
                        for p in json.loads(body):
                            self.ledger.claim(learner, p)
                    except (ValueError, TypeError, OSError):
                        pass
                await send(start)
                await send({"type": "http.response.body", "body": body})
        await self.app(scope, receive, note)

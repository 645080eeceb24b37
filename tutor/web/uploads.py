"""Uploaded files: the only files a web learner can name. An upload fills in `--file` in the
message box; a typed server path is refused before the tool runs."""

from __future__ import annotations

import shlex
from pathlib import Path

import gradio as gr

from .. import commands
from ..context import Tutor
from ..tools import Tool

def upload_dir() -> Path:
    """Where Gradio keeps uploaded files (GRADIO_TEMP_DIR); the only files a web learner can name."""
    from gradio import utils
    return Path(utils.get_upload_folder()).resolve()


def is_uploaded(path: str | Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(upload_dir())
    except (OSError, ValueError):
        return False


def attach_upload(box: str, path: str | None, tools: dict[str, Tool]) -> str:
    """An uploaded file becomes `--file PATH` right after the command in the message box
    (options come before free text). An empty box gets the first tool that takes a file."""
    if not path:
        return box
    if not is_uploaded(path):
        raise gr.Error("Only files uploaded through this page can be used.")
    arg = f"--file {shlex.quote(str(path))}"
    box = (box or "").strip()
    if box.startswith("/"):
        head, _, tail = box.partition(" ")
        return f"{head} {arg}" + (f" {tail}" if tail else "")
    takers = [t.name for t in tools.values() if any(p.name == "file" and p.file and p.option for p in t.params)]
    preferred = [n for n in ("finetune",) if n in takers] + takers
    return (f"/{preferred[0]} " if preferred else "") + arg + (f" {box}" if box else "")


def check_file_args(message: str, tutor: Tutor) -> str | None:
    """In the web app a tool may only read uploaded files: a typed server path is refused.
    Returns the refusal text, or None when the command is fine (or not a command)."""
    text = message.strip()
    if not text.startswith("/"):
        return None
    try:
        call = commands.parse(text, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
    except Exception:  # parse problems are answered by chat.respond with a clear message
        return None
    for p in call.tool.params:
        value = call.args.get(p.name)
        if p.file and isinstance(value, str) and value and not is_uploaded(value):
            return (f"`--{p.name}` must be a file uploaded through this page, not a path on the server "
                    f"(got `{Path(value).name}`). Use the Upload file button; it fills in `--{p.name}` for you.")
    return None

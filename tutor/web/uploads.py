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


def attach_upload(box: str, path: str | None, tools: dict[str, Tool]) -> str:
    """An uploaded file becomes `--file PATH` right after the command in the message box
    (options come before free text). An empty box, or a command that takes no such file, gets
    the first tool that takes this kind of file (an image: /patches, a recording: /spectrogram)."""
    if not path:
        return box
    if not is_uploaded(path):
        raise gr.Error("Only files uploaded through this page can be used.")
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

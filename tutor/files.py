"""The one reader of a file a learner gives a tool (`ctx.read_upload`): where it may come from,
how big it may be, and that it is UTF-8 text; every refusal says what to do instead."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .tools import ToolError


def read_upload(path_text: str, settings: Any, suffixes: tuple[str, ...] | None = None) -> str:
    """The text of an uploaded file, or a ToolError saying what is wrong with it.

    Only files under the temp folder (where the web page puts uploads; GRADIO_TEMP_DIR too),
    TUTOR_HOME or the current folder are read, so a learner cannot make the server read any
    file it can see. `suffixes` (e.g. (".txt", ".md")) limits the kinds of file a tool takes.
    """
    path = upload_path(path_text, settings, suffixes)
    return _decode(path.name, path, settings.max_upload_mb)


def upload_path(path_text: str, settings: Any, suffixes: tuple[str, ...] | None = None,
                what: str = "") -> Path:
    """The checked path of an uploaded file of any kind (an image, a recording): from the same
    folders as `read_upload`, of one of `suffixes`, under the upload limit. `what` names the
    kind in messages, e.g. "an image"; without it the file is taken to be plain text."""
    try:  # RuntimeError: "~name" for a user this machine does not have; ValueError: a NUL or a lone surrogate
        path = Path(path_text).expanduser()
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise ToolError(f"No file at {path_text!r}. Upload {what or 'a plain-text file (.txt)'} in the page, "
                        "or give the path of one with --file.") from None
    roots = [Path(tempfile.gettempdir()), Path(settings.home), Path.cwd()]
    if os.environ.get("GRADIO_TEMP_DIR"):  # where Gradio keeps uploads when told otherwise
        roots.append(Path(os.environ["GRADIO_TEMP_DIR"]))
    if not any(resolved.is_relative_to(r.resolve()) for r in roots):
        raise ToolError(f"{path_text!r} is outside the folders uploads come from; upload the file in "
                        "the page, or copy it under the current folder.")
    if not resolved.is_file():
        raise ToolError(f"{path_text!r} is not a file. Give the path of {what or 'a plain-text file'}.")
    if suffixes and resolved.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes)
        raise ToolError(f"{path.name} is not {what} ({kinds})." if what else
                        f"{path.name} is not a {kinds} file. Save your text as plain text ({kinds}).")
    size = resolved.stat().st_size
    if what and size > settings.max_upload_mb * 2**20:  # text says so in _decode, with its own advice
        raise ToolError(f"{path.name} is {size / 2**20:.1f} MB; the upload limit is {settings.max_upload_mb:g} MB "
                        "(TUTOR_MAX_UPLOAD_MB). Send a smaller file.")
    if what and size == 0:
        raise ToolError(f"{path.name} is empty.")
    return resolved


def _decode(name: str, path: Path, max_mb: float) -> str:
    size = path.stat().st_size
    if size > max_mb * 2**20:
        raise ToolError(f"{name} is {size / 2**20:.1f} MB; the upload limit is {max_mb:g} MB "
                        "(TUTOR_MAX_UPLOAD_MB). Send a shorter text.")
    raw = path.read_bytes()
    if not raw.strip():
        raise ToolError(f"{name} is empty. Put some text in it (a few pages is plenty).")
    if b"\x00" in raw:
        raise ToolError(f"{name} is not UTF-8 text: it contains NUL bytes, so it looks like a binary file. "
                        "Export it as plain text (.txt) first.")
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as e:
        raise ToolError(f"{name} is not UTF-8 text (byte {e.start} cannot be decoded). Re-save it as UTF-8 "
                        "(most editors: Save As -> Encoding: UTF-8).") from None

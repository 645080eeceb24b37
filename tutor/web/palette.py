"""The tool palette: a form per tool built from its schema, and form values -> the command line
the learner could have typed."""

from __future__ import annotations

import shlex
from typing import Any

import gradio as gr

from ..plugins import Registry
from ..tools import Param, Tool


def palette_command(tool: Tool, values: list[Any]) -> str:
    """Palette form values -> the command line the learner could have typed."""
    words, rest = [f"/{tool.name}"], ""
    for p, v in zip(tool.params, values):
        if v is None or v == "" or (p.type is bool and not v):
            continue
        if p.rest:
            rest = str(v)
        elif p.option:
            flag = f"--{p.name.replace('_', '-')}"
            words += [flag] if p.type is bool else [flag, shlex.quote(_word(p, v))]
        else:
            words.append(shlex.quote(_word(p, v)))
    return " ".join(words) + (" " + rest if rest else "")


def _word(p: Param, v: Any) -> str:
    if p.type is int:
        return str(int(v))
    if p.type is list and isinstance(v, (list, tuple)):
        return ",".join(v)
    if isinstance(v, dict) and "path" in v:  # a gr.File value
        return str(v["path"])
    return str(v)


def palette_input(p: Param, reg: Registry, tool: str = "") -> gr.components.Component:
    label = (f"--{p.name}" if p.option else p.name) + (f" — {p.help}" if p.help else "")
    default = None if p.required else p.default
    elem = {"elem_id": f"palette-{tool}-{p.name}"}
    if p.file:
        return gr.File(label=label, file_count="single", type="filepath", **elem)
    if p.type is bool:
        return gr.Checkbox(label=label, value=bool(default), **elem)
    choices = list(p.choices) if isinstance(p.choices, tuple) else (
        reg.names(p.choices) if isinstance(p.choices, str) else None)
    if choices:
        return gr.Dropdown(choices=choices, value=default, label=label, allow_custom_value=True, **elem)
    if p.type in (int, float):
        return gr.Number(value=default, label=label, precision=0 if p.type is int else None,
                         minimum=p.min, maximum=p.max, **elem)
    return gr.Textbox(value=default or "", label=label, lines=3 if p.rest else 1, **elem)

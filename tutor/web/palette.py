"""The tool palette: open a tool, get its form (pre-filled from its example, tutor/forms.py), Run.

A form is built when its section is first opened (gr.render), so a new page builds a section per
tool instead of every form; what a form means is decided in tutor/forms.py, the same functions
the API endpoints and `tutor plugins --json` use.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from ..forms import DEFAULT, Field, command, fields
from ..plugins import Registry
from ..tools import Tool
from .render import sanitize_markdown


def palette_command(tool: Tool, values: list[Any]) -> str:
    """Palette form values -> the command line the learner could have typed (empty = default)."""
    return command(tool, values)


def palette_input(f: Field, tool: str = "") -> gr.components.Component:
    """One form field as a Gradio component; its elem_id is palette-TOOL-PARAM."""
    # a key per tool and parameter: a re-rendered form never reuses another tool's component
    elem = {"elem_id": f"palette-{tool}-{f.param.name}", "key": f"palette-{tool}-{f.param.name}",
            "interactive": True}  # a rendered form is not inferred to be interactive
    if f.kind == "file":
        accept = list(f.param.accept) or None
        return gr.File(label=f.label, file_count="single", type="filepath", file_types=accept, **elem)
    if f.kind == "check":
        return gr.Checkbox(label=f.label, value=bool(f.value), **elem)
    if f.kind == "choice":
        value = f.value if f.value == DEFAULT or f.value in [v for _, v in f.choices] else f.value
        return gr.Dropdown(choices=list(f.choices), value=value, label=f.label, allow_custom_value=True, **elem)
    if f.kind == "number":
        p = f.param
        return gr.Number(value=f.value, label=f.label, precision=0 if p.type is int else None,
                         minimum=p.min, maximum=p.max, placeholder=f.placeholder, **elem)
    return gr.Textbox(value=str(f.value), label=f.label, placeholder=f.placeholder,
                      lines=3 if f.param.rest else 1, max_lines=12, **elem)


def palette(reg: Registry, run_turn: Callable, turn_inputs: list, outputs: list) -> None:
    """A folded section per tool; its form is built when it is first opened (one gr.render per
    tool, so a form never shares components with another tool's). `run_turn(command,
    *turn_inputs[1:])` runs the command as a chat turn into `outputs`."""
    gr.Markdown("### Tools\n\nA form starts from the tool's example; an empty field means the "
                "tool's default.", elem_id="palette-hint")
    for tool in sorted(reg.tools.values(), key=lambda t: t.name):
        with gr.Accordion(f"/{tool.name}", open=False, elem_id=f"palette-{tool.name}") as section:
            _lazy_form(reg, tool, section, run_turn, turn_inputs, outputs)


def _lazy_form(reg: Registry, tool: Tool, section: gr.Accordion, run_turn: Callable, turn_inputs: list,
               outputs: list) -> None:
    @gr.render(triggers=[section.expand])
    def form() -> None:
        gr.Markdown(sanitize_markdown(tool.summary + (f"\n\nExample: `{tool.example}`" if tool.example else "")),
                    key=f"palette-{tool.name}-about")
        inputs = [palette_input(f, tool.name) for f in fields(tool, reg)]
        run = gr.Button(f"Run /{tool.name}", elem_id=f"run-{tool.name}", variant="secondary", key=f"run-{tool.name}")
        cmd = gr.Textbox(visible=False, key=f"command-{tool.name}")
        run.click(lambda *v: palette_command(tool, list(v)), inputs, cmd, api_visibility="private").then(
            run_turn, [cmd, *turn_inputs[1:]], outputs, api_visibility="private", concurrency_limit=None)

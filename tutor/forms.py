"""A tool's schema as a form, and a filled form as the command line a learner could have typed.

The page's palette, the API's per-tool endpoints and `tutor plugins --json` use these, so a form
means exactly what the typed command means:
  * every field starts from the tool's example (the same command `/help NAME` shows), else empty;
  * an empty field means the tool's default: it is left out of the command, never sent as 0;
  * an optional choice (a model "when left out", a head "all heads when left out") has a first
    choice that leaves it out;
  * options come first, then positional words, then the free text.
Plain Python: no Gradio here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from . import commands
from .tools import Param, Tool, ToolError

DEFAULT = ""  # the value of a choice that leaves the parameter out


@dataclass(frozen=True)
class Field:
    """One form field: what to show and what it starts with."""

    param: Param
    kind: str  # "text", "number", "check", "choice" or "file"
    label: str
    value: Any  # pre-filled from the example, else the default, else empty
    placeholder: str = ""  # what an empty field means
    choices: tuple[tuple[str, str], ...] = ()  # (label, value); value DEFAULT leaves it out


def is_file(p: Param) -> bool:
    """A parameter that names an uploaded file (the schema's File marker)."""
    return bool(getattr(p, "file", False))


def flag(p: Param) -> str:
    return f"--{p.name.replace('_', '-')}"


def example_args(tool: Tool, registry: commands.Names, max_chars: int = 1_000_000) -> dict[str, Any] | None:
    """The tool's example parsed against its schema; None when it has none or it no longer parses."""
    if not tool.example:
        return None
    try:
        return commands.parse(tool.example, {tool.name: tool}, registry, max_chars).args
    except ToolError:
        return None


def fields(tool: Tool, registry: commands.Names) -> list[Field]:
    """The form for `tool`, pre-filled from its example."""
    given = example_args(tool, registry) or {}
    return [_field(p, given, registry) for p in tool.params]


def _field(p: Param, given: dict[str, Any], registry: commands.Names) -> Field:
    label = flag(p) if p.option else p.name
    default = None if p.required else p.default
    value = given.get(p.name, default)
    if is_file(p):
        return Field(p, "file", label + _help(p), None, "upload a file")
    if p.type is bool:
        return Field(p, "check", label + _help(p), bool(value))
    names = list(p.choices) if isinstance(p.choices, tuple) else (
        registry.names(p.choices) if isinstance(p.choices, str) else None)
    if names is not None:
        options = tuple((n, n) for n in names)
        if default is None:  # left out is a choice of its own
            options = ((_left_out(p), DEFAULT),) + options
        return Field(p, "choice", label + _help(p), DEFAULT if value is None else str(value), choices=options)
    if p.type is list and isinstance(value, (list, tuple)):
        value = ",".join(value)
    kind = "number" if p.type in (int, float) and default is not None else "text"
    return Field(p, kind, label + _help(p) + _range(p), "" if value is None else value,
                 _placeholder(p, default))


def _help(p: Param) -> str:
    return f" — {p.help}" if p.help else ""


def _range(p: Param) -> str:
    lo = "" if p.min is None else f"at least {p.min:g}"
    hi = "" if p.max is None else f"at most {p.max:g}"
    both = ", ".join(x for x in (lo, hi) if x)
    return f" ({both})" if both else ""


def _placeholder(p: Param, default: Any) -> str:
    if p.required:
        return "required"
    if default is None:  # "(default: all heads of the layer)" -> "empty: all heads of the layer"
        return "empty: " + (_left_out(p).strip("()").removeprefix("default: ") if _left_out(p) != "(default)"
                            else "the tool's default")
    if default == "":
        return "empty: none"
    return f"empty: {default}"


def _left_out(p: Param) -> str:
    """The label of the choice that leaves an optional parameter out."""
    help_ = p.help.lower()
    for marker in ("when left out", "when empty", "by default"):
        if marker in help_:
            head = p.help[:help_.index(marker)].rstrip(" ;,(")
            return f"(default: {head.split(';')[-1].strip()})" if head else "(default)"
    return "(default)"


def command(tool: Tool, values: list[Any] | dict[str, Any]) -> str:
    """Form values (in parameter order, or by name) -> the command line. Empty means default."""
    if not isinstance(values, dict):
        values = {p.name: v for p, v in zip(tool.params, values)}
    options, words, rest = [], [], ""
    for p in tool.params:
        word = _word(p, values.get(p.name))
        if word is None:
            continue
        if p.rest:
            rest = word
        elif p.type is bool:  # "--flag", or "--flag=false" against a default of true
            options.append(flag(p) if word == "" else f"{flag(p)}={word}")
        elif p.option:
            options += [flag(p), word]
        else:
            words.append(word)
    line = " ".join([f"/{tool.name}", *options, *words])
    return f"{line} {rest}" if rest else line


def _word(p: Param, v: Any) -> str | None:
    """The shell word for one value; None leaves it out, "" is a bare flag."""
    if isinstance(v, dict) and "path" in v:  # an uploaded file as Gradio gives it
        v = v["path"]
    if v is None or (isinstance(v, str) and not v.strip() and not p.rest) or v == [] or v == ():
        return None
    if p.type is bool:
        on = v if isinstance(v, bool) else str(v).lower() in ("true", "1", "yes")
        default = False if p.required else bool(p.default)
        return None if on == default else ("" if on else "false")
    if p.rest:
        return _rest(str(v))
    if not p.required and _same(v, p.default):
        return None
    if p.type is list:  # an option takes one comma-separated word; a positional list, words
        items = [str(x) for x in v] if isinstance(v, (list, tuple)) else str(v).replace(",", " ").split()
        return shlex.quote(",".join(items)) if p.option else " ".join(shlex.quote(x) for x in items)
    if p.type is int and isinstance(v, float) and v.is_integer():
        v = int(v)
    return shlex.quote(str(v).strip())


def _same(v: Any, default: Any) -> bool:
    try:
        return v == default or (isinstance(v, str) and default is not None and type(default)(v) == default)
    except (TypeError, ValueError):
        return False


def _rest(text: str) -> str | None:
    """Free text as the parser will read it back: quoted when its edges matter, after `--` when it
    starts like an option."""
    if not text.strip():
        return None
    if text != text.strip() or text[0] in "'\"":
        text = shlex.quote(text)
    return f"-- {text}" if text.startswith("-") else text

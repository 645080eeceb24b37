"""Tool, Param and Reply: what a tool is, what it takes, what it answers.

A tool is a plain annotated function with a docstring. Its schema comes from the signature:

    def count(ctx, encoding: Annotated[str | None, Arg(choices="tokenizers")] = None,
              text: Text = "") -> Reply:
        '''Count tokens in TEXT with one encoding, or with every encoding.'''

gives the tool `count` with an optional positional `encoding` and the rest of the line as `text`.
Positional-or-keyword parameters are positional words; keyword-only parameters are `--options`;
a `bool` option is a flag. The same schema drives parsing, /help, the web palette and lessons.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Sequence, Union


class ToolError(Exception):
    """A problem the user can fix; its message says what was wrong and how to fix it."""


def valid_unicode(text: str, what: str = "Your text") -> str:
    """`text`, or a ToolError if it holds a lone surrogate (half of a UTF-16 pair, e.g. from a
    browser that split an emoji, or a file decoded with errors='surrogateescape'): such a code
    point has no UTF-8 bytes, so no tokenizer can take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ToolError(f"{what} holds a lone surrogate code point U+{ord(text[e.start]):04X} at character "
                        f"{e.start + 1} (half of a UTF-16 pair, so it is not valid Unicode and has no UTF-8 "
                        "bytes). Remove it or paste the whole character again.") from None
    return text


@dataclass(frozen=True)
class Arg:
    """Extra schema for a parameter: help text and the allowed values.

    `choices` is a list, or the name of a registry ("tokenizers", "models", "tools") whose
    names are the allowed values at the moment of parsing.
    """

    help: str = ""
    choices: tuple[str, ...] | str | None = None
    min: float | None = None
    max: float | None = None
    accept: tuple[str, ...] = ()  # for a File: the suffixes it takes, e.g. (".txt", ".md")


class _Rest:
    """Marker: this parameter takes the rest of the line, whitespace and newlines kept."""


Text = Annotated[str, _Rest]
"""Annotation for the free text at the end of a command (a prompt, a text to tokenize)."""


class _Upload:
    """Marker: this parameter names a file to read (in the page: one uploaded through it)."""


File = Annotated[str, _Upload]
"""Annotation for a file the tool reads, e.g. `file: Annotated[File | None, Arg("your .txt")] = None`.
The page offers an upload for it and refuses a typed path on the server."""


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # str, int, float, bool or list (of str)
    default: Any = inspect.Parameter.empty
    help: str = ""
    choices: tuple[str, ...] | str | None = None
    option: bool = False  # --name value (keyword-only) instead of a positional word
    rest: bool = False  # takes the rest of the line
    file: bool = False  # names a file to read (File)
    optional: bool = False  # None is allowed
    min: float | None = None
    max: float | None = None
    accept: tuple[str, ...] = ()  # a File's suffixes (the page's upload button takes these)

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def type_name(self) -> str:
        if self.rest:
            return "text"
        return {list: "list of words"}.get(self.type, self.type.__name__)

    def usage(self) -> str:
        name = self.name.upper()
        if self.option:
            word = f"--{self.name.replace('_', '-')}"
            return f"[{word}]" if self.type is bool else f"[{word} {name}]"
        if self.type is list:
            name += "..."
        return name if self.required else f"[{name}]"


@dataclass
class Tool:
    name: str
    func: Callable[..., Any]
    summary: str
    description: str
    params: list[Param]
    example: str = ""
    # plain words the tool answers to ("how many tokens", "split into tokens"): tutor/intents.py
    phrases: tuple[str, ...] = ()
    plugin: str = ""  # filled by the plugin manager: who registered it
    # Which lane of the web server runs it (tutor/lanes.py): "quick", "model", "long", "control",
    # or a function of the call's arguments returning one; "" decides from the parameters.
    lane: str | Callable[[dict], str] = ""

    @classmethod
    def from_function(cls, func: Callable[..., Any], name: str | None = None, example: str = "",
                      phrases: Sequence[str] = ()) -> Tool:
        doc = inspect.cleandoc(func.__doc__ or "")
        summary, _, description = doc.partition("\n")
        if not summary:
            raise TypeError(f"tool {func.__name__!r} needs a docstring: its first line is the /help summary")
        params = [_param(p, hint) for p, hint in _signature(func)]
        if sum(p.rest for p in params) > 1:
            raise TypeError(f"tool {func.__name__!r}: only one parameter can take the rest of the line")
        return cls((name or func.__name__).replace("_", "-"), func, summary.strip(),
                   description.strip(), params, example, tuple(p.lower() for p in phrases))

    def usage(self) -> str:
        """Options first: they must come before the free text."""
        ordered = [p for p in self.params if p.option] + [p for p in self.params if not p.option]
        return " ".join([f"/{self.name}", *(p.usage() for p in ordered)])

    def json_schema(self) -> dict:
        """The parameters as JSON Schema (for MCP listings and form builders)."""
        kinds = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}
        props: dict[str, dict] = {}
        for p in self.params:
            prop: dict[str, Any] = {"type": kinds[p.type], "description": p.help}
            if p.type is list:
                prop["items"] = {"type": "string"}
            if isinstance(p.choices, tuple):
                prop["enum"] = list(p.choices)
            if not p.required and p.default is not None:
                prop["default"] = p.default
            props[p.name] = prop
        required = [p.name for p in self.params if p.required]
        return {"type": "object", "properties": props, "required": required}

    @property
    def api_name(self) -> str:
        """The tool's name where a hyphen is not allowed: MCP tools, OpenAI function calls."""
        return self.name.replace("-", "_")

    @property
    def api_description(self) -> str:
        return self.summary + ("\n\n" + self.description if self.description else "")


def openai_tool_schema(tool: Tool) -> dict:
    """The tool as an OpenAI-style function (chat completions `tools=`): the same name,
    description and parameters that the MCP listing shows."""
    return {"type": "function", "function": {"name": tool.api_name, "description": tool.api_description,
                                             "parameters": tool.json_schema()}}


def _signature(func: Callable) -> list[tuple[inspect.Parameter, Any]]:
    hints = typing.get_type_hints(func, include_extras=True)
    out = []
    for i, p in enumerate(inspect.signature(func).parameters.values()):
        if i == 0 and p.name == "ctx":  # every tool receives the call context first
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise TypeError(f"tool {func.__name__!r}: *args and **kwargs have no schema; name each parameter")
        out.append((p, hints.get(p.name, str)))
    return out


def _param(p: inspect.Parameter, hint: Any) -> Param:
    hint, extras = _unwrap_annotated(hint)
    base, optional = _unwrap_optional(hint)
    base, inner = _unwrap_annotated(base)  # `File | None`: the marker sits inside the Optional
    extras += inner
    arg = next((e for e in extras if isinstance(e, Arg)), Arg())
    rest, upload = _Rest in extras, _Upload in extras
    if typing.get_origin(base) is list or base is list:
        base = list
    elif typing.get_origin(base) is typing.Literal:
        arg = Arg(arg.help, tuple(str(v) for v in typing.get_args(base)), arg.min, arg.max, arg.accept)
        base = str
    if base not in (str, int, float, bool, list):
        raise TypeError(f"parameter {p.name!r}: type {base!r} is not one of str, int, float, bool, list[str]")
    choices = tuple(arg.choices) if isinstance(arg.choices, (list, tuple)) else arg.choices
    # free text is always the last positional word, even when declared after `*`
    return Param(p.name, base, p.default, arg.help, choices, option=p.kind is p.KEYWORD_ONLY and not rest,
                 rest=rest, file=upload, optional=optional, min=arg.min, max=arg.max,
                 accept=tuple(a.lower() for a in arg.accept))


def _unwrap_annotated(hint: Any) -> tuple[Any, list]:
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        return hint, list(extras)
    return hint, []


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


# ---- replies -------------------------------------------------------------------------------

@dataclass
class Span:
    """One coloured piece of text: a token with its id, a colour group and a hover title."""

    text: str
    id: int | None = None
    group: int = 0  # colour index; neighbours differ
    title: str = ""
    special: bool = False


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Any]]

    def markdown(self) -> str:
        def cell(v: Any) -> str:
            return str(v).replace("|", "\\|").replace("\n", "\\n")
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass
class Reply:
    """What a tool answers: markdown text, optional structured parts, and `data`.

    `data` is a JSON-able dict of the facts the tool computed; lesson checks and tests read it,
    never the prose. `done` is False on the intermediate replies of a streaming tool.
    """

    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    table: Table | None = None
    figure: Any = None  # a matplotlib Figure, or a tutor.figures.Heatmap (an HTML table where one can show)
    files: list[Path] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)  # commands offered to the learner
    error: bool = False
    done: bool = True
    progress: float | None = None  # 0..1 while long work runs

    def _repr_html_(self) -> str:
        """How Jupyter shows a reply: spans, table and figure, as the page shows them."""
        from .reply_html import reply_html
        return reply_html(self)

    def plain(self) -> str:
        """The reply as terminal text."""
        parts = [self.text] if self.text else []
        if self.spans:
            parts.append(" | ".join(f"{s.text!r}" + (f" {s.id}" if s.id is not None else "") for s in self.spans))
        if self.table:
            parts.append(self.table.markdown())
        if self.buttons:
            parts.append("Try: " + "   ".join(self.buttons))
        return "\n\n".join(parts)

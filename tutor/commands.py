"""'/name args' -> ToolCall: shell-style words, typed and checked against the tool's schema.

Options (`--name value`, `--flag`) and positional words come first; a parameter marked `Text`
takes the rest of the line exactly as typed, so whitespace, newlines and quotes inside a text
to tokenize survive. A rest that is one quoted word is unquoted (`" hello"` keeps its space).
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

from .tools import Param, Tool, ToolError


@dataclass
class ToolCall:
    tool: Tool
    args: dict[str, Any]


def closest(word: str, names: Iterable[str], n: int = 3) -> list[str]:
    names = list(names)
    return difflib.get_close_matches(word, names, n=n, cutoff=0.5) or [
        m for m in names if m.startswith(word[:2])][:n]


def suggest(word: str, names: Iterable[str]) -> str:
    near = closest(word, names)
    return f" Did you mean {', '.join(near)}?" if near else ""


def _words(line: str, start: int) -> Iterable[tuple[str | None, int]]:
    """Yield (word, start) for each shell word of line[start:], `start` a position in line.

    A word shlex cannot finish (an unbalanced quote) comes as (None, start): a text parameter
    takes the raw rest from there, anything else reports the quote. shlex reads a small window
    at a time (grown when a word might run past it), so a 1 MB text after the command words is
    never copied or scanned here.
    """
    pos = start
    while True:
        size = 4096
        while True:
            chunk = line[pos:pos + size]
            more = pos + size < len(line)
            lexer = shlex.shlex(chunk, posix=True, punctuation_chars=False)
            lexer.whitespace_split = True
            lexer.commenters = ""
            begin = pos + len(chunk) - len(chunk.lstrip())
            try:
                word = lexer.get_token()
            except ValueError:  # "No closing quotation" / "No escaped character"
                if more:
                    size *= 4
                    continue
                yield None, begin
                return
            end = lexer.instream.tell()
            if more and end >= len(chunk):  # the word may continue past the window
                size *= 4
                continue
            break
        if word is None:
            return
        yield word, begin
        pos += end


class Names(Protocol):
    """What the parser asks of the registry about a parameter whose choices name one of it."""

    def names(self, kind: str) -> list[str]: ...  # the names it holds now, for suggestions

    def accepts(self, kind: str, word: str) -> bool: ...  # e.g. a hub id is a model nobody listed


# The tool name right after the slash, and a quote opening the rest: matched in place, since the
# rest can be a 1 MB text, which every slice, split or strip would copy (P1, bench/bench_tokenize.py).
_WORD = re.compile(r"\S*")
_QUOTE_FIRST = re.compile(r"\s*['\"]")
_NAME = re.compile(r"\s*/\s*(\S*)")


def command_name(text: str) -> str:
    """The tool name a `/name args` line starts with, lower-cased ('' when there is none)."""
    m = _NAME.match(text)
    return m.group(1).lower() if m else ""


def parse(line: str, tools: dict[str, Tool], registry: Names, max_chars: int) -> ToolCall:
    """Parse one command line against the tools' schemas and the registry's names."""
    if len(line) > max_chars:
        raise ToolError(f"That input has {len(line):,} characters; the limit is {max_chars:,}. "
                        "Send a shorter text, or raise TUTOR_MAX_INPUT_CHARS.")
    start = line.index("/") + 1
    typed = _WORD.match(line, start).group()  # matched in place: a slice of a 1 MB text would copy it
    name = typed.lower()  # tool names are case-insensitive: /COUNT is /count
    if not name:
        raise ToolError("A command starts with / and a tool name, e.g. /help.")
    tool = tools.get(name)
    if tool is None:
        raise ToolError(f"There is no tool called /{name}.{suggest(name, tools)} Type /help for the list.")
    return ToolCall(tool, _bind(tool, line, start + len(typed), registry))


def _bind(tool: Tool, line: str, offset: int, registry: Names) -> dict[str, Any]:
    options = {f"--{p.name.replace('_', '-')}": p for p in tool.params if p.option}
    options.update({f"--{p.name}": p for p in tool.params})
    positional = [p for p in tool.params if not p.option]
    args: dict[str, Any] = {}
    words = iter(_words(line, offset))
    options_done = False
    for word, start in words:
        if word is None and not (positional and any(p.rest for p in positional)):
            raise ToolError("Unbalanced quote or trailing backslash. Close the quote, or put a backslash "
                            "before a quote you mean literally.")
        if word is None:
            word = line[start:].split(maxsplit=1)[0]
        if word.startswith("--") and not options_done:
            if word == "--":
                options_done = True
                continue
            key, eq, value = word.partition("=")
            p = options.get(key)
            if p is None:
                raise ToolError(f"/{tool.name} has no option {key}.{suggest(key, options)} "
                                f"Usage: {tool.usage()}")
            if p.type is bool and not eq:
                args[p.name] = True
                continue
            if not eq:
                nxt = next(words, None)
                if nxt is None or nxt[0] is None:
                    raise ToolError(f"{key} needs a value ({p.type_name}). Usage: {tool.usage()}")
                value = nxt[0]
            args[p.name] = convert(tool, p, value, registry)
            continue
        # positional words: fill the next free positional parameter
        while positional and positional[0].name in args:
            positional.pop(0)
        if not positional:
            raise ToolError(f"/{tool.name} got an extra word {word!r}. Usage: {tool.usage()}")
        p = positional[0]
        if p.rest:
            args[p.name] = _rest(line, start)
            break
        if not p.required and p.choices is not None and not _accepted(p, word, registry):
            # an optional word that is not one of its choices belongs to the next parameter
            positional.pop(0)
            if positional and positional[0].rest:
                args[positional[0].name] = _rest(line, start)
                break
            if not positional:
                raise ToolError(f"{word!r} is not a valid {p.name}.{suggest(word, _allowed(p, registry))} "
                                f"Usage: {tool.usage()}")
            p = positional[0]
        if p.type is list:
            args[p.name] = [word] + [w for w, _ in words if w is not None]
            break
        args[p.name] = convert(tool, p, word, registry)
    for p in tool.params:
        if p.name not in args and p.required:
            raise ToolError(f"/{tool.name} needs {p.name.upper()}" + (f" ({p.help})" if p.help else "")
                            + f". Usage: {tool.usage()}" + (f"  Example: {tool.example}" if tool.example else ""))
    return args


def _rest(line: str, start: int) -> str:
    rest = line[start:]
    if not _QUOTE_FIRST.match(line, start):  # the usual case: no quotes, no stripped copy of the text
        return rest
    stripped = rest.strip()
    if stripped[-1:] == stripped[:1] and len(stripped) > 1:
        try:
            words = shlex.split(stripped)
        except ValueError:
            return rest
        if len(words) == 1:
            return words[0]
    return rest


def _allowed(p: Param, registry: Names) -> list[str]:
    return list(p.choices) if isinstance(p.choices, tuple) else registry.names(p.choices)


def _accepted(p: Param, word: str, registry: Names) -> bool:
    return word in p.choices if isinstance(p.choices, tuple) else registry.accepts(p.choices, word)


def convert(tool: Tool, p: Param, value: str, registry: Names) -> Any:
    """One word -> the parameter's type, with an error naming the argument, expectation and value."""
    want = {int: "a whole number", float: "a number", bool: "true or false"}.get(p.type)
    try:
        if p.type is bool:
            low = value.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            out: Any = low in ("true", "1", "yes")
        elif p.type is list:
            out = value.split(",")
        else:
            out = p.type(value)
    except ValueError:
        raise ToolError(f"--{p.name.replace('_', '-')} expects {want}, but got {value!r}. "
                        f"Usage: {tool.usage()}") from None
    if p.type is float and not math.isfinite(out):  # NaN compares false with min and max alike
        raise ToolError(f"--{p.name.replace('_', '-')} must be a finite number, but got {value!r}. "
                        f"Usage: {tool.usage()}")
    if p.choices is not None and p.type is str and not _accepted(p, out, registry):
        allowed = _allowed(p, registry)
        raise ToolError(f"{out!r} is not a valid {p.name}.{suggest(out, allowed)} "
                        f"Choose one of: {', '.join(allowed)}.")
    if p.min is not None and out < p.min or p.max is not None and out > p.max:
        lo = "" if p.min is None else f"at least {p.min:g}"
        hi = "" if p.max is None else f"at most {p.max:g}"
        raise ToolError(f"--{p.name.replace('_', '-')} must be {' and '.join(x for x in (lo, hi) if x)}, "
                        f"but got {value}.")
    return out


def help_text(tools: dict[str, Tool], name: str | None = None) -> str:
    """The /help reply: every tool with its summary, or one tool's parameters and example."""
    if not name:
        lines = ["**Tools** (type `/help NAME` for one tool's parameters):", ""]
        lines += [f"- `/{t.name}` — {t.summary}" for t in sorted(tools.values(), key=lambda t: t.name)]
        return "\n".join(lines)
    tool = tools.get(name.lstrip("/").lower())
    if tool is None:
        raise ToolError(f"There is no tool called /{name}.{suggest(name, tools)} Type /help for the list.")
    lines = [f"**/{tool.name}** — {tool.summary}", "", f"Usage: `{tool.usage()}`", ""]
    if tool.description:
        lines += [tool.description, ""]
    rows = ["| parameter | type | default | meaning |", "|---|---|---|---|"]
    for p in tool.params:
        label = f"--{p.name.replace('_', '-')}" if p.option else p.name.upper()
        default = "required" if p.required else repr(p.default)
        kind = p.type_name + (f" (one of: {', '.join(p.choices)})" if isinstance(p.choices, tuple) else
                              f" (one of the {p.choices})" if isinstance(p.choices, str) else "")
        rows.append(f"| `{label}` | {kind} | {default} | {p.help} |")
    lines += rows if tool.params else ["(no parameters)"]
    if tool.example:
        lines += ["", f"Example: `{tool.example}`"]
    lines += ["", f"From plugin: {tool.plugin}"]
    return "\n".join(lines)


def command_line(tool: Tool, args: dict[str, Any]) -> str:
    """Named arguments (an MCP call, a model's function call) -> the command line a learner could
    have typed: `command_line(count, {"text": "hi", "encoding": "gpt2"})` -> "/count gpt2 hi".
    An unknown name is an error that lists the tool's parameters; parsing the line checks the rest."""
    known = {p.name: p for p in tool.params}
    unknown = [k for k in args if k not in known]
    if unknown:
        raise ToolError(f"/{tool.name} has no parameter {', '.join(map(repr, unknown))}. "
                        f"Its parameters: {', '.join(known) or '(none)'}. Usage: {tool.usage()}")
    words, rest = [f"/{tool.name}"], ""
    for p in tool.params:
        v = args.get(p.name)
        if v is None or v == "" or (p.type is bool and v in (False, "false", "False")):
            continue
        if p.rest:
            rest = str(v)
        elif p.option:
            flag = f"--{p.name.replace('_', '-')}"
            words += [flag] if p.type is bool else [flag, shlex.quote(_word(p, v))]
        elif p.type is list and isinstance(v, (list, tuple)):
            words += [shlex.quote(str(w)) for w in v]  # a positional list takes the remaining words
        else:
            words.append(shlex.quote(_word(p, v)))
    if rest.lstrip().startswith("-"):  # free text that looks like an option stays text
        words.append("--")
    return " ".join(words) + (" " + rest if rest else "")


def _word(p: Param, v: Any) -> str:
    if p.type is int and isinstance(v, float) and v.is_integer():
        return str(int(v))  # JSON clients may send 3.0 for 3
    if p.type is bool:
        return "true"
    if isinstance(v, (list, tuple)):  # an option list is one comma-separated word
        return ",".join(map(str, v))
    return str(v)

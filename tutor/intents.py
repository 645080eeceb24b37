"""Plain words -> a tool call, or one short question when the request is ambiguous or incomplete.

It knows no particular tool. Everything comes from the registry: tool names and the phrases a
tool declares when it registers (found by tutor/phrasing.py: stems, alternatives, weak verbs,
typos), parameter names, types and choices from the tool's schema, file names, and
model and tokenizer names with their aliases, families ("GPT-4o" -> o200k_base) and
architectures ("llama" -> smollm2-135m).

    "tokenize unhappiness with bert"         -> Run("/tokenize bert-base-uncased unhappiness")
    "how many tokens is 'hi' in gpt-4o?"     -> Run("/count o200k_base hi")
    "show me layer 3's attention"            -> Ask("Which model?", "/attention smollm2-135m --layer 3", ...)
    "what is attention?"                     -> None (a free question)
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable

from .hub_ids import is_hub_id
from .phrasing import GLUE, PAD, Message, canon, close, phrase_spans, stem, weak_spans  # noqa: F401 (close: part of the API)
from .tools import Param, Tool

KINDS = ("models", "tokenizers")
QUESTION = re.compile(r"^(?:(?:in|on|at|for|from|to|with|by)\s+(?:what|which)|what|why|how|when|where|which|who|"
                      r"whose|is|are|does|did|can|could|should|would|will|explain|tell)\b", re.I)
# In a question, unquoted words that open with an article name a kind of thing, not a text to run
# on: "how many tokens is a whole instruction?" asks the lessons, "how many tokens is hello?" a tool.
A_KIND = re.compile(r"^(?:a|an|one|every|each|any|some|my|your)\s", re.I)
NUMBER = r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)"  # 3, 0.7, 1e-4
BETWEEN = r"(?:(?!(?:into|of|to|in|on|for|with|and|from|by)\b)[a-z]+\s+)?"  # "10 bpe merges", never "96 into patches"
BEFORE_NAME = re.compile(r"(?:\b(?:with|in|using|on|for|by|from|of|through|via|to)\s+(?:the\s+)?)$", re.I)
AFTER_NAME = re.compile(r"^\s*(?:model|tokenizer|encoding|vocab(?:ulary)?)\b", re.I)
FILLER = re.compile(r"^(?:[\s,:;.!?-]|\b(?:for|after|of|on|in|with|about|from|to|as|is|are|be|would|does|do|into|using|by|me|my|"
                    r"please|this|that|these|the following|(?:(?:the|a|an)\s+)?(?:text|word|sentence|prompt|ids?|tokens?|string))\b)+",
                    re.I)
TRAILER = re.compile(r"(?:[\s,:;.!?]|\bplease\b|\bfor me\b)+$", re.I)
JOINER = re.compile(r"\s+(?:with|using|and|via)\s*$", re.I)
KIND_WORDS = re.compile(r"\s*\b(?:across|in|with|for|on|using|through)\s+(?:(?:all|every|each|the|several)\s+)*"
                        r"(?:tokenizers?|models?)\s*$", re.I)  # "compare unhappiness across tokenizers"
VERB_AT_END = re.compile(r"\s+(?:have|has|take|takes|use|uses|need|needs|make|makes|be|get|gets|give|gives)$", re.I)


@dataclass(frozen=True)
class Run:
    line: str  # the slash command the request means


@dataclass(frozen=True)
class Ask:
    question: str
    buttons: tuple[str, ...]  # whole commands, one per answer


def norm(surface: str) -> str:
    """How names are compared: 'GPT-4o' == 'gpt4o', 'smollm2 135m' == 'smollm2-135m'."""
    return re.sub(r"[\s._-]", "", surface.lower())


def param_kind(p: Param) -> str | None:
    """'models' or 'tokenizers' for a parameter that names one (by its choices, else its name)."""
    if isinstance(p.choices, str) and p.choices in KINDS:
        return p.choices
    plural = p.name.rstrip("s") + "s"
    return plural if plural in KINDS else None


# ---- names the registry knows -----------------------------------------------------------------

@dataclass
class Names:
    """surface -> [(priority, kind, name)]: 0 a name or alias, 1 a tokenizer's model family,
    2 a model's architecture, 3 a unique-enough prefix of a name."""

    table: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    offered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names to offer in a question

    @classmethod
    def build(cls, registry: Any, available_models: Iterable[str] | None = None) -> "Names":
        names = cls()
        for spec in registry.tokenizers.values():
            names._add(0, "tokenizers", spec.name, [spec.name, *spec.aliases])
            family = getattr(spec, "family", "") or ""
            names._add(1, "tokenizers", spec.name, re.findall(r"[A-Za-z]+-?\d[\w.]*", family))
        for spec in registry.models.values():
            names._add(0, "models", spec.id, [spec.id, *getattr(spec, "aliases", ())])
            names._add(2, "models", spec.id, [getattr(spec, "architecture", "") or ""])
        names.offered = {"tokenizers": list(registry.tokenizers)[:5],
                         "models": list(available_models if available_models is not None else registry.models)[:4]}
        return names

    def _add(self, priority: int, kind: str, name: str, surfaces: Iterable[str]) -> None:
        for s in surfaces:
            if norm(s) and (priority, kind, name) not in self.table.get(norm(s), []):
                self.table.setdefault(norm(s), []).append((priority, kind, name))

    def lookup(self, surface: str) -> list[tuple[int, str, str]]:
        key = norm(surface)
        if key in self.table:
            return self.table[key]
        if is_hub_id(surface, namespaced=True) and norm(surface.split("/")[1]) in self.table:  # openai-community/gpt2
            return [e for e in self.table[norm(surface.split("/")[1])] if e[1] == "tokenizers"]
        if len(key) < 4 or key.isdigit():
            return []
        return [(3, k, n) for s, entries in self.table.items() if s.startswith(key)
                for p, k, n in entries if p == 0]

    def resolve(self, surface: str, kind: str) -> list[str]:
        """The names of `kind` a mention means, best first (several: ask which)."""
        entries = self.lookup(surface)
        mine = [e for e in entries if e[1] == kind]
        if mine:
            best = min(p for p, _, _ in mine)
            return list(dict.fromkeys(n for p, _, n in mine if p == best))
        if kind == "tokenizers":  # a model named where a tokenizer is wanted: its own tokenizer
            return list(dict.fromkeys(t for p, k, m in entries if k == "models" and p in (0, 3)  # not an architecture
                                      for t in self.offered_all("tokenizers") if norm(m).startswith(norm(t))))
        if "/" in surface and is_hub_id(surface, namespaced=True):
            return [surface]
        return []

    def offered_all(self, kind: str) -> list[str]:
        return list(dict.fromkeys(n for entries in self.table.values() for p, k, n in entries if k == kind and p == 0))


def mentions(msg: Message, names: Names) -> list[tuple[str, int, int]]:
    """(surface, start, end) of each registry name in the message, longest first at each place."""
    out, words, i = [], msg.words, 0
    while i < len(words):
        for n in (3, 2, 1):
            chunk = words[i:i + n]
            if len(chunk) < n or any(msg.masked[a[2]:b[1]].strip(" -") for a, b in zip(chunk, chunk[1:])):
                continue
            surface = msg.masked[chunk[0][1]:chunk[-1][2]]
            if names.lookup(surface) or ("/" in surface and is_hub_id(surface, namespaced=True)):
                out.append((msg.text[chunk[0][1]:chunk[-1][2]], chunk[0][1], chunk[-1][2]))
                i += n - 1
                break
        i += 1
    return out


# ---- filling a tool's parameters --------------------------------------------------------------

@dataclass
class Fill:
    args: dict[str, Any] = field(default_factory=dict)
    spans: list[tuple[int, int]] = field(default_factory=list)  # what the arguments used up
    evidence: int = 0  # how many arguments the words gave: ranks tools that share a phrase
    named: int = 0  # numbers given by their option's name ("patch size 16"): a question can ask for these
    ask: tuple[str, str, list[str]] | None = None  # (question, parameter, candidates)

    def take(self, name: str, value: Any, start: int, end: int) -> None:
        if name not in self.args:
            self.args[name] = value
            self.spans.append((start, end))
            self.evidence += 1


def param_names(p: Param) -> list[list[str]]:
    """The words a parameter is called by: its name ('max_tokens' -> max, tokens) and, for an
    abbreviation, the first words of its help ('lr' -> learning, rate)."""
    out = [p.name.split("_")]
    if len(p.name) <= 3 and p.help:
        words = re.findall(r"[a-z]+", re.split(r"[(,;:]", p.help.lower())[0])[:3]
        out += [words] if words else []
    return out


def numbers_in(p: Param, msg: Message) -> list[tuple[str, str, int, int]]:
    """Every place the message gives `p` a number: (name, value, start, end). "layer 3", "3 layers",
    "patch size 32"; `fill` settles overlaps, the longest mention first."""
    out = []
    for words in param_names(p):
        name = r"[\s_-]*".join(re.escape(w) for w in words) + r"\w*(?:\s+(?:size|count|number|width|length))?"
        for pattern in (rf"\b{name}\s*(?:=|:|of|to|is|at|equals?)?\s*{NUMBER}(?!\w)",
                        rf"(?<![\w.]){NUMBER}{PAD}*\s*-?\s*{BETWEEN}{re.escape(stem(words[-1]))}\w*\b"):
            for m in re.finditer(pattern, msg.masked):
                end = m.end()
                while end < len(msg.masked) and msg.masked[end] == PAD:  # the rest of "two"
                    end += 1
                out.append((p.name, m.group(1), m.start(), end))
    return out


def take_numbers(found: list[tuple[str, str, int, int]], fill: Fill) -> None:
    used: list[tuple[int, int]] = []
    for name, value, start, end in sorted(found, key=lambda f: f[2] - f[3]):  # longest first
        if name not in fill.args and not any(start < b and a < end for a, b in used):
            fill.take(name, value, start, end)
            fill.named += 1
            used.append((start, end))


def _word_choice(p: Param, msg: Message, fill: Fill) -> None:
    if p.type is bool:
        flag = stem(p.name.replace("_", " ").split()[0])
        for word, start, end in msg.words:
            if stem(word) == flag or (len(p.name) >= 5 and word.startswith(p.name[:-1])):
                fill.take(p.name, True, start, end)
                return
        return
    for word, start, end in msg.words:  # a one-word choice by its stem or an everyday synonym
        if word not in p.choices and any(" " not in c and "-" not in c and canon(word) == canon(c) for c in p.choices):
            fill.take(p.name, next(c for c in p.choices if canon(word) == canon(c)), start, end)
            return
    for choice in p.choices:  # "python docs" names python-docs; "corpus lessons" uses up both words
        flexible = r"[\s_-]*".join(re.escape(w) for w in re.split(r"[\s_-]+", choice))
        name = r"[\s_-]*".join(map(re.escape, p.name.split("_")))
        m = re.search(rf"(?:\b{name}\s*[:=]?\s*)?\b{flexible}\b(?:\s*{name}\b)?", msg.masked)
        if m:
            fill.take(p.name, choice, m.start(), m.end())
            return


def _word_option(p: Param, msg: Message, fill: Fill) -> None:
    """A free word for a string option named right before it: "masking sat" -> --mask sat."""
    m = re.search(rf"\b{re.escape(p.name)}(?:ing)?\s*[:=]?\s+([^\s,;]+)", msg.masked)
    if m and m.group(1) not in GLUE:
        fill.take(p.name, msg.text[m.start(1):m.end(1)], m.start(), m.end())


def _word_file(p: Param, msg: Message, fill: Fill) -> None:
    """A file name the message gives ("on my file notes.txt"): the tool's `file`, words before it included."""
    m = re.search(r"(?:\b(?:my|the|this)\s+)?(?:\b(?:file|upload)\s+)?\b([\w./-]*[a-z][\w./-]*\.[a-z][a-z0-9]{1,4})\b",
                  msg.masked)
    if m:
        fill.take(p.name, msg.text[m.start(1):m.end(1)], m.start(), m.end())


def _fill_names(tool: Tool, msg: Message, names: Names, fill: Fill) -> None:
    found = mentions(msg, names)
    for kind in KINDS:
        params = [p for p in tool.params if param_kind(p) == kind]
        if not params:
            continue
        one = next((p for p in params if p.type is not list), None)
        many = next((p for p in params if p.type is list), None)
        picked: list[str] = []
        for surface, start, end in found:
            before = BEFORE_NAME.search(msg.masked[:start])  # the name, "with" before it, "model" after
            after = AFTER_NAME.match(msg.masked[end:])       # it: never part of the text, even when we ask
            fill.spans.append((before.start() if before else start, end + (after.end() if after else 0)))
            resolved = names.resolve(surface, kind)
            if not resolved:
                fill.ask = (f"`{surface}` is not a {kind[:-1]} here. Which {kind[:-1]}?",
                            (one or many).name, names.offered[kind])
                return
            if len(resolved) > 1:
                fill.ask = (f"Which {kind[:-1]} do you mean by `{surface}`?", (one or many).name, resolved)
                return
            if resolved[0] not in picked:
                picked.append(resolved[0])
        if len(picked) > 1 and many is not None:
            fill.args[many.name], fill.evidence = picked, fill.evidence + len(picked)
        elif len(picked) > 1:
            fill.ask = (f"Which {kind[:-1]}: one at a time here?", one.name, picked)
        elif picked:
            fill.take((one or many).name, picked[0] if one else picked, 0, 0)
        elif one is not None and one.required:
            fill.ask = (f"Which {kind[:-1]}?", one.name, names.offered[kind])


def _leftover(msg: Message, fill: Fill, start: int) -> str:
    """The words after the tool's phrase that no argument used: the text to work on. A question's
    closing verb is no text ("how many tokens does hello take?")."""
    keep = list(msg.text)
    for a, b in fill.spans:
        keep[a:b] = "\x00" * (b - a)
    pieces = "".join(keep)[start:].split("\x00")
    pieces = [JOINER.sub("", p) if i < len(pieces) - 1 else p for i, p in enumerate(pieces)]  # "... mat with" 20 merges
    runs = [FILLER.sub("", TRAILER.sub("", KIND_WORDS.sub("", run))) for run in pieces]
    if QUESTION.match(msg.text.strip()):
        runs = [VERB_AT_END.sub("", " " + r.rstrip()) for r in runs]
    runs = [r.strip() for r in runs if r.strip() and not set(r.lower().split()) <= GLUE]
    return runs[-1] if runs else ""


def fill(tool: Tool, msg: Message, names: Names, phrases: list[tuple[int, int, int]]) -> Fill:
    """Arguments for `tool` from the message and the places its phrases were found."""
    out = Fill(spans=[(s, e) for _, s, e in phrases])
    start = min(s for _, s, _ in phrases)
    numbers = []
    for p in tool.params:
        digits = isinstance(p.choices, tuple) and all(c.isdigit() for c in p.choices)
        if p.type in (int, float) or digits:
            numbers += numbers_in(p, msg)
        elif p.type is bool or (isinstance(p.choices, tuple) and p.type is str):
            _word_choice(p, msg, out)
        elif p.name == "file" and p.type is str:
            _word_file(p, msg, out)
        elif p.option and p.type is str and not p.choices and not param_kind(p):
            _word_option(p, msg, out)
    take_numbers(numbers, out)
    _fill_names(tool, msg, names, out)
    for p in tool.params:
        if p.rest and p.name not in out.args:
            text = msg.quotes[0] if msg.quotes else _leftover(msg, out, start)
            if text:
                out.args[p.name] = text
                out.evidence += bool(msg.quotes)  # a quoted text is what a text tool works on
        elif p.type is list and not param_kind(p) and p.name not in out.args:
            words = [w for w in re.sub(r"[,\[\]()]", " ", _leftover(msg, out, start)).split() if w.lower() not in GLUE]
            if not words:  # "turn 40 1842 into text": the numbers came before the phrase
                words = [w for w in re.sub(r"[,\[\]()]", " ", _leftover(msg, out, 0)).split() if w.isdigit()]
            if words:
                out.args[p.name] = words
    missing = [p for p in tool.params if p.required and isinstance(p.choices, tuple) and p.name not in out.args]
    if missing and out.ask is None:  # "/bpe" with no action: ask which, never take a word of the text for it
        out.ask = (f"Which {missing[0].name}?", missing[0].name, list(missing[0].choices)[:4])
    return out


# ---- the command line -------------------------------------------------------------------------

def _word(value: str) -> str:
    return shlex.quote(value) if re.search(r"[\s'\"\\]", value) or not value else value


def command_line(tool: Tool, args: dict[str, Any]) -> str:
    """The slash command for these arguments: options first, then positional words, then the text."""
    out = [f"/{tool.name}"]
    for p in (p for p in tool.params if p.option and args.get(p.name) not in (None, False)):
        value = args[p.name]
        out += [f"--{p.name.replace('_', '-')}"] if p.type is bool else \
            [f"--{p.name.replace('_', '-')}", ",".join(value) if p.type is list else _word(str(value))]
    for p in (p for p in tool.params if not p.option and args.get(p.name) not in (None, "", [])):
        value = args[p.name]
        if p.rest:
            plain = value == value.strip() and not value.startswith(("-", '"', "'"))
            out.append(value if plain else ('"' + value + '"' if '"' not in value else "'" + value + "'"))
        else:
            out += [_word(str(v)) for v in value] if p.type is list else [_word(str(value))]
    return " ".join(out)


# ---- the request --------------------------------------------------------------------------------

def _candidates(tools: dict[str, Tool], msg: Message, names: Names) -> list:
    """((phrase length, evidence), phrase start, tool, fill) for each tool the words may mean."""
    scored = []
    for tool in tools.values():
        spans = phrase_spans(tool, msg)
        weak = not spans
        spans = spans or weak_spans(tool, msg)
        if not spans:
            continue
        got = fill(tool, msg, names, spans)
        if weak and not (got.named or any(param_kind(p) and p.name in got.args for p in tool.params)):
            continue  # "write me a poem" asks the tutor; "write a story with smollm2" asks a tool
        if msg.quotes and not any(p.rest or p.type is list for p in tool.params):
            continue  # a quoted text is for a tool that takes one ("compare all tokenizers on 'x'")
        length, start, _ = max(spans, key=lambda s: (s[0], -s[1]))
        scored.append(((length, got.evidence), start, tool, got))
    scored.sort(key=lambda x: (x[0], -x[1]), reverse=True)
    return scored


def _essential(tool: Tool, got: Fill) -> bool:
    """Whether the tool misses its text: the one its summary names in capitals ("Count the tokens of TEXT")."""
    return any(p.rest and p.name not in got.args and p.name.upper() in tool.summary for p in tool.params)


def _a_question(text: str, msg: Message, rank: tuple, start: int, tool: Tool, got: Fill) -> bool:
    """A question ("what is attention?") is about a tool's topic, not a request, unless the tool's
    phrase opens it ("how many tokens is ...", "which tokenizers are available?", "what modules
    does smollm2 have?"), it gives an option by name ("... with patch size 16?"), or it quotes a
    text for a named or clearly phrased tool ("what comes next after 'The cat'?"). The last
    sentence decides."""
    last = re.split(r"[?.!]\s+", text.strip())[-1]
    if not QUESTION.match(last):
        return False
    words = [s for _, s, _ in msg.words]
    if re.match(r"(?:what|which)\s", last, re.I) and len(words) > 1 and start == words[1] and not got.ask:
        return _essential(tool, got) or (not msg.quotes and any(  # "what modules does smollm2 have?"
            p.rest and A_KIND.match(str(got.args.get(p.name, ""))) for p in tool.params))
    named = any(param_kind(p) and p.name in got.args for p in tool.params)
    if start > words[0] and not (got.named or (msg.quotes and (rank[0] >= 2 or named))):
        return True
    if not msg.quotes and (_essential(tool, got) if got.named else any(p.rest and p.name not in got.args
                                                                          for p in tool.params)):
        return True  # "how many tokens are in o200k_base?" asks about the lessons' facts
    return not msg.quotes and any(p.rest and A_KIND.match(str(got.args.get(p.name, ""))) for p in tool.params)


def interpret(text: str, tools: dict[str, Tool], names: Names) -> Run | Ask | None:
    """The tool call a plain-language request means, a question back, or None (not a request)."""
    msg = Message.read(text)
    if not msg.words and not msg.quotes:
        return None
    scored = _candidates(tools, msg, names)
    if not scored:
        return None
    rank, start, tool, got = scored[0]
    if _a_question(text, msg, rank, start, tool, got):
        return None
    rivals = [t for r, at, t, _ in scored[1:] if r == rank and at == start]  # else the earlier phrase leads
    if rivals:
        lines = [command_line(t, g.args) for r, at, t, g in scored if r == rank and at == start][:3]
        return Ask("Which did you mean?", tuple(lines))
    if got.ask:
        q, param, candidates = got.ask
        return Ask(q, tuple(command_line(tool, {**got.args, param: c if param_kind(_param(tool, param)) is None
                                                 or _param(tool, param).type is not list else [c]})
                            for c in candidates))
    return Run(command_line(tool, got.args))


def _param(tool: Tool, name: str) -> Param:
    return next(p for p in tool.params if p.name == name)

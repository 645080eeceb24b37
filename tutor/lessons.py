"""Lessons: YAML files -> strict models; the curriculum in teaching order; validation; checks.

A lesson file (one per lesson, `lessons/NN-slug.yaml`) looks like this:

    id: arch-attention
    title: Self-attention in DistilGPT2
    module: architecture            # one of MODULES
    order: 4                        # position in the curriculum (plugins may use 4.5)
    prerequisites: [arch-layernorm]
    summary: One line for the outline.
    steps:
      - text: "Markdown the learner reads."
      - run: /inspect distilgpt2-arch            # executed live, its reply shown
      - try: /tokenize gpt2 unhappiness          # offered as an editable button
      - quiz: {question: ..., choices: [...], answer: ..., explanation: ..., hint: ...}
      - check: {command: /count gpt2 hello, claim: ..., expect: [{path: counts.gpt2, equals: 1}]}

YAML never holds code: every computation is a tool command, checked against the tool's schema
by `validate` and run for real by `run_checks`. Every problem carries its file and line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import lesson_numbers

if TYPE_CHECKING:
    from .context import Session
    from .plugins import Registry
    from .tools import Reply

MODULES = ("architecture", "generation", "training", "tokenization", "multimodal")
MODULE_TITLES = {"architecture": "Architecture", "generation": "Generation", "training": "Training",
                 "tokenization": "Tokenization", "multimodal": "Multimodal models"}


# ---- the YAML schema -----------------------------------------------------------------------

class _Strict(BaseModel):
    # numbers written in YAML choices/answers (768) are read as the text the learner types
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Quiz(_Strict):
    question: str
    choices: list[str] = Field(default_factory=list)  # empty: a short-answer question
    answer: str | list[str]  # the right choice's text, or accepted short answers
    explanation: str
    hint: str = ""  # shown after a wrong answer, instead of the answer

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> "Quiz":
        if self.choices:
            if not isinstance(self.answer, str) or self.answer not in self.choices:
                raise ValueError(f"answer {self.answer!r} must be exactly one of the choices")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError("choices must differ from each other")
        return self

    @property
    def accepted(self) -> list[str]:
        return [self.answer] if isinstance(self.answer, str) else list(self.answer)


class Expect(_Strict):
    """One expectation on a dotted path into the reply's `data`.

    Paths: `counts.gpt2`, `ids.0`, `modules[name=lm_head].parameters` (the first list item
    whose field equals the value), `ids.length` is not special: use `length:` instead.
    """

    path: str
    equals: Any = None
    between: tuple[float, float] | None = None  # inclusive
    contains: Any = None  # an item of a list, a substring of a string, a key of a dict
    not_contains: Any = None
    one_of: list[Any] | None = None
    length: int | None = None

    @model_validator(mode="after")
    def _one_test(self) -> "Expect":
        given = [k for k in ("equals", "between", "contains", "not_contains", "one_of", "length")
                 if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, between, contains, not_contains, one_of, length "
                             f"(got {', '.join(given) or 'none'})")
        return self

    def test(self, data: Any) -> tuple[bool, str]:
        """(passed, what was found) for this expectation on `data`."""
        try:
            found = resolve(data, self.path)
        except LookupError as e:
            return False, str(e)
        if self.equals is not None:
            ok = _same(found, self.equals)
        elif self.between is not None:
            ok = isinstance(found, (int, float)) and self.between[0] <= found <= self.between[1]
        elif self.contains is not None:
            ok = _has(found, self.contains)
        elif self.not_contains is not None:
            ok = not _has(found, self.not_contains)
        elif self.one_of is not None:
            ok = any(_same(found, v) for v in self.one_of)
        else:
            ok = hasattr(found, "__len__") and len(found) == self.length
            found = f"length {len(found)}" if hasattr(found, "__len__") else found
        return ok, _short(found)

    def describe(self) -> str:
        for k in ("equals", "between", "contains", "not_contains", "one_of", "length"):
            v = getattr(self, k)
            if v is not None:
                return f"{self.path} {k.replace('_', ' ')} {v!r}"
        return self.path


class Check(_Strict):
    command: str
    claim: str  # the sentence of the lesson this check backs, in words
    expect: list[Expect] = Field(min_length=1)
    setup: list[str] = Field(default_factory=list)  # commands run first in the same session


class Step(_Strict):
    """Exactly one of the kinds; `say` is markdown shown before a run/try/check."""

    text: str | None = None
    run: str | None = None
    try_: str | None = Field(None, alias="try")
    quiz: Quiz | None = None
    check: Check | None = None
    say: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="after")
    def _one_kind(self) -> "Step":
        kinds = [k for k in ("text", "run", "try_", "quiz", "check") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a step is exactly one of text, run, try, quiz, check "
                             f"(got {', '.join(k.rstrip('_') for k in kinds) or 'none'})")
        if self.say and kinds[0] in ("text", "quiz"):
            raise ValueError("`say` goes with run, try and check steps")
        return self

    @property
    def kind(self) -> Literal["text", "run", "try", "quiz", "check"]:
        return next(k.rstrip("_") for k in ("text", "run", "try_", "quiz", "check") if getattr(self, k) is not None)

    @property
    def command(self) -> str | None:
        return self.run or self.try_ or (self.check.command if self.check else None)


class Lesson(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    module: str
    order: float
    summary: str = ""
    prerequisites: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(min_length=1)

    @field_validator("module")
    @classmethod
    def _known_module(cls, v: str) -> str:
        if v not in MODULES:
            raise ValueError(f"unknown module {v!r}; use one of {', '.join(MODULES)}")
        return v

    @model_validator(mode="after")
    def _hands_on(self) -> "Lesson":
        if not any(s.kind in ("run", "try") for s in self.steps):
            raise ValueError("a lesson needs at least one run or try step: learners do, not only read")
        return self

    @property
    def checks(self) -> list[Check]:
        return [s.check for s in self.steps if s.check]

    @property
    def commands(self) -> list[str]:
        """The run/try commands: what a free-question answer offers as buttons."""
        return [s.command for s in self.steps if s.kind in ("run", "try")]


# ---- loading with line numbers -------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    kind: str = "error"  # "unknown tool" is kept apart so a branch without a tool can tell

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Source:
    """Where a lesson came from: its file, the plugin that shipped it, and line numbers."""

    path: Path
    plugin: str
    lines: dict[tuple, int]  # YAML path (keys and indexes) -> line number (1-based)

    def line(self, loc: Iterable[Any]) -> int:
        """The line of the deepest part of `loc` that exists in the file."""
        loc = tuple("try" if p == "try_" else p for p in loc)
        while loc and loc not in self.lines:
            loc = loc[:-1]
        return self.lines.get(loc, 1)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # what yaml.safe_load uses, in C when available


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_map(value, path + (key.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out)
    return out


def load_file(path: Path, plugin: str = "built-in") -> tuple[Lesson | None, Source, list[Problem]]:
    """Parse one lesson file. Returns the lesson (None if invalid) and every problem found."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        # Parse once: the node tree gives line numbers, the same loader builds the plain data
        # (safe_load's constructor; libyaml's C parser when installed).
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, UnicodeDecodeError) as e:
        return None, Source(path, plugin, {}), [Problem(name, 1, f"cannot read the file: {e}")]
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", 0) + 1
        return None, Source(path, plugin, {}), [Problem(name, line, f"not valid YAML: {e}")]
    source = Source(path, plugin, _line_map(node) if node is not None else {})
    if not isinstance(raw, dict):
        return None, source, [Problem(name, 1, "a lesson file is a mapping with id, title, module, order, steps")]
    try:
        return Lesson.model_validate(raw), source, []
    except ValidationError as e:
        return None, source, [Problem(name, source.line(err["loc"]), _message(err)) for err in e.errors()]


def _message(err: dict) -> str:
    where = ".".join(str(p) for p in err["loc"]).replace("try_", "try")
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    if err["type"] == "missing":
        return f"missing key {where!r}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


# ---- the curriculum ------------------------------------------------------------------------

@dataclass
class Curriculum:
    """Every valid lesson in teaching order, with where each came from and the load problems."""

    lessons: list[Lesson] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, lesson_id: str) -> Lesson | None:
        return next((l for l in self.lessons if l.id == lesson_id), None)

    def index(self, lesson_id: str) -> int:
        return next(i for i, l in enumerate(self.lessons) if l.id == lesson_id)

    def find(self, word: str) -> Lesson | None:
        """A lesson by id, by number in the outline (1-based), or by a unique id prefix."""
        word = word.strip().lower()
        if word.isdigit() and 1 <= int(word) <= len(self.lessons):
            return self.lessons[int(word) - 1]
        if self.get(word):
            return self.get(word)
        starts = [l for l in self.lessons if l.id.startswith(word)]
        return starts[0] if len(starts) == 1 else None

    @cached_property
    def search(self):
        from .search import LessonSearch
        return LessonSearch(self)


def lesson_dirs(registry: "Registry | None") -> list[tuple[str, Path]]:
    """(plugin, folder) for the built-in curriculum, then every folder plugins registered."""
    from .plugins import builtin_dir

    return [("built-in", builtin_dir("lessons"))] + list(registry.lessons if registry else [])


def load_curriculum(registry: "Registry | None" = None, paths: Iterable[Path] | None = None) -> Curriculum:
    """Load lessons from the given files/folders, or from the built-in folder and every plugin's."""
    folders = [("given", Path(p)) for p in paths] if paths is not None else lesson_dirs(registry)
    cur = Curriculum()
    loaded: list[tuple[Lesson, Source]] = []
    for plugin, folder in folders:
        if not folder.exists():
            cur.problems.append(Problem(str(folder), 1, f"lesson folder registered by {plugin} does not exist"))
            continue
        files = [folder] if folder.is_file() else sorted(folder.glob("*.y*ml"))
        for path in files:
            lesson, source, problems = load_file(path, plugin)
            cur.problems += problems
            if lesson is None:
                continue
            if lesson.id in cur.sources:
                first = cur.sources[lesson.id]
                cur.problems.append(Problem(str(path), source.line(("id",)),
                                            f"duplicate lesson id {lesson.id!r} (first in {first.path}); kept the first"))
                continue
            cur.sources[lesson.id] = source
            loaded.append((lesson, source))
    # Teaching order: modules in their fixed order, then `order`, then id (stable for ties).
    loaded.sort(key=lambda ls: (MODULES.index(ls[0].module), ls[0].order, ls[0].id))
    cur.lessons = [l for l, _ in loaded]
    cur.problems += _graph_problems(cur)
    return cur


def _graph_problems(cur: Curriculum) -> list[Problem]:
    problems = []
    ids = {l.id for l in cur.lessons}
    for lesson in cur.lessons:
        src = cur.sources[lesson.id]
        for i, pre in enumerate(lesson.prerequisites):
            if pre not in ids:
                problems.append(Problem(str(src.path), src.line(("prerequisites", i)),
                                        f"prerequisite {pre!r} is not a lesson id"))
    # cycles: depth-first search over prerequisite edges
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(lid: str, trail: list[str]) -> None:
        state[lid] = 1
        for pre in cur.get(lid).prerequisites:
            if pre not in ids:
                continue
            if state.get(pre) == 1:
                loop = trail[trail.index(pre):] + [pre] if pre in trail else [lid, pre]
                src = cur.sources[lid]
                problems.append(Problem(str(src.path), src.line(("prerequisites",)),
                                        "prerequisite cycle: " + " -> ".join(loop)))
            elif state.get(pre) is None:
                visit(pre, trail + [pre])
        state[lid] = 2

    for lesson in cur.lessons:
        if lesson.id not in state:
            visit(lesson.id, [lesson.id])
    return problems


# ---- validation against the tools ----------------------------------------------------------

def validate(registry: "Registry", paths: Iterable[Path] | None = None, max_chars: int = 200_000) -> tuple[Curriculum, list[Problem]]:
    """Load and check every lesson: schema, graph, and every command against its tool's schema."""
    from . import commands
    from .tools import ToolError

    cur = load_curriculum(registry, paths)
    problems = list(cur.problems)
    for lesson in cur.lessons:
        src = cur.sources[lesson.id]
        for i, step in enumerate(lesson.steps):
            lines = [(step.command, (i, step.kind) if step.kind != "check" else (i, "check", "command"))]
            if step.check:
                lines += [(c, (i, "check", "setup", j)) for j, c in enumerate(step.check.setup)]
            for line, loc in lines:
                if line is None:
                    continue
                where = (str(src.path), src.line(("steps",) + loc))
                if not line.startswith("/"):
                    problems.append(Problem(*where, f"{line!r} is not a tool command (it must start with /)"))
                    continue
                name = line[1:].split(maxsplit=1)[0].lower() if len(line) > 1 else ""
                if name != "help" and name not in registry.tools:
                    problems.append(Problem(*where, f"unknown tool /{name} in {line!r}", kind="unknown tool"))
                    continue
                if name == "help":
                    continue
                try:
                    call = commands.parse(line, registry.tools, registry, max_chars)
                except ToolError as e:
                    problems.append(Problem(*where, f"/{name} rejects {line!r}: {e}"))
                    continue
                late = _late_option(call)
                if late:
                    problems.append(Problem(*where, f"{late} comes after the free text in {line!r}, so /{name} "
                                                    "reads it as text; put options before the text"))
    problems += lesson_numbers.problems(cur)  # a stated number no check asserts
    return cur, problems


def _late_option(call: Any) -> str | None:
    """An --option of the tool written inside its free text (options must come first)."""
    options = {f"--{p.name.replace('_', '-')}" for p in call.tool.params if p.option}
    for p in call.tool.params:
        value = call.args.get(p.name)
        if p.rest and isinstance(value, str):
            for word in re.findall(r"(?:^|\s)(--[\w-]+)", value):
                if word in options:
                    return word
    return None


def unknown_tools(problems: Iterable[Problem]) -> set[str]:
    return {re.match(r"unknown tool /(\S+)", p.message).group(1) for p in problems if p.kind == "unknown tool"}


# ---- checks --------------------------------------------------------------------------------

@dataclass
class CheckResult:
    lesson: str
    step: int  # 1-based
    command: str
    claim: str
    passed: bool
    skipped: bool = False
    details: list[str] = field(default_factory=list)


def run_check(check: Check, session: "Session") -> tuple[bool, list[str], "Reply"]:
    """Run one check's setup and command in `session`; test every expectation on the data."""
    from . import chat

    for line in check.setup:
        reply = chat.final(line, session)
        if reply.error:
            return False, [f"setup {line!r} failed: {reply.text}"], reply
    reply = chat.final(check.command, session)
    if reply.error:
        return False, [f"the command failed: {reply.text}"], reply
    details, ok = [], True
    for exp in check.expect:
        passed, found = exp.test(reply.data)
        ok &= passed
        details.append(f"{'ok ' if passed else 'FAIL'} {exp.describe()} (found {found})")
    return ok, details, reply


def run_checks(cur: Curriculum, tutor: Any, only: Iterable[str] | None = None,
               skip_missing: bool = False) -> list[CheckResult]:
    """Every check step of the curriculum, each lesson in a fresh session."""
    only = set(only) if only else None
    results = []
    for lesson in cur.lessons:
        if only and lesson.id not in only:
            continue
        session = tutor.session(f"lesson-check:{lesson.id}")
        for i, step in enumerate(lesson.steps, 1):
            if not step.check:
                continue
            c = step.check
            needed = {line[1:].split(maxsplit=1)[0].lower() for line in [c.command, *c.setup]}
            missing = sorted(n for n in needed if n not in tutor.registry.tools and n != "help")
            if missing and skip_missing:
                results.append(CheckResult(lesson.id, i, c.command, c.claim, False, True,
                                           [f"skipped: /{', /'.join(missing)} not installed"]))
                continue
            ok, details, _ = run_check(c, session)
            results.append(CheckResult(lesson.id, i, c.command, c.claim, ok, False, details))
    return results


# ---- data paths ----------------------------------------------------------------------------

_PART = re.compile(r"([^.\[\]]+)|\[([^=\]]+)=([^\]]*)\]")


def resolve(data: Any, path: str) -> Any:
    """Follow a dotted path into JSON-like data.

    >>> resolve({"a": [{"n": "x.y", "v": 3}]}, "a[n=x.y].v")
    3
    >>> resolve({"ids": [5, 6]}, "ids.1")
    6
    """
    here, pos = data, 0
    for m in _PART.finditer(path):
        if path[pos:m.start()].strip("."):
            raise LookupError(f"cannot read path {path!r} near {path[pos:m.start()]!r}")
        pos = m.end()
        key, field_, value = m.groups()
        if field_ is not None:
            if not isinstance(here, list):
                raise LookupError(f"{path!r}: [{field_}={value}] needs a list")
            match = [x for x in here if isinstance(x, dict) and str(x.get(field_)) == value]
            if not match:
                raise LookupError(f"{path!r}: no item with {field_} = {value!r}")
            here = match[0]
        elif isinstance(here, dict) and key in here:
            here = here[key]
        elif isinstance(here, list) and re.fullmatch(r"-?\d+", key) and -len(here) <= int(key) < len(here):
            here = here[int(key)]
        else:
            raise LookupError(f"{path!r}: no {key!r} in the data")
    return here


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _has(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, dict):
        return item in container
    if isinstance(container, (list, tuple)):
        return any(_same(x, item) for x in container)
    return False


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# ---- the outline (pure: the web page and the terminal both use it) -------------------------

def outline(cur: Curriculum, progress: "Progress | None" = None) -> list[dict[str, Any]]:
    """Modules with their lessons, each marked done/current, for any front end.

    [{"module": "architecture", "title": "Architecture", "lessons": [{"number": 1, "id": ...,
      "title": ..., "steps": 7, "done": False, "current": True, "step": 2, "plugin": "built-in"}]}]
    """
    done = set(progress.done) if progress else set()
    current = progress.lesson if progress else None
    out: list[dict[str, Any]] = []
    for number, lesson in enumerate(cur.lessons, 1):
        if not out or out[-1]["module"] != lesson.module:
            out.append({"module": lesson.module, "title": MODULE_TITLES[lesson.module], "lessons": []})
        out[-1]["lessons"].append({
            "number": number, "id": lesson.id, "title": lesson.title, "steps": len(lesson.steps),
            "done": lesson.id in done, "current": lesson.id == current,
            "step": (progress.step + 1) if progress and lesson.id == current else None,
            "plugin": cur.sources[lesson.id].plugin})
    return out


def outline_markdown(cur: Curriculum, progress: "Progress | None" = None) -> str:
    """The outline as markdown: ✅ done, ▶ current (with its step), plugin lessons labelled."""
    lines = []
    for module in outline(cur, progress):
        lines += [f"**{module['title']}**", ""]
        for l in module["lessons"]:
            mark = "✅ " if l["done"] else "▶ " if l["current"] else ""
            title = f"**{l['title']}** — step {l['step']} of {l['steps']}" if l["current"] else l["title"]
            extra = f" *(from {l['plugin']})*" if l["plugin"] != "built-in" else ""
            lines.append(f"{l['number']}. {mark}{title}{extra}")
        lines.append("")
    if not lines:
        return "No lessons are installed."
    total, finished = len(cur.lessons), len(set(progress.done) if progress else ())
    return "\n".join(lines + [f"{finished} of {total} lessons done. Say `start`, `next`, `back`, "
                              "`lesson N` or `where am I`."])


def outline_for(tutor: Any, learner: str | None) -> str:
    """The outline markdown for one learner of a running tutor (what the page shows)."""
    from .progress import Progress

    progress = tutor.progress.load(learner) if learner else Progress()
    return outline_markdown(tutor.curriculum, progress)


# ---- the chat: navigation and quizzes -------------------------------------------------------

_NAV = {"start": "start", "begin": "start", "resume": "start", "continue": "start", "next": "next",
        "n": "next", "back": "back", "previous": "back", "prev": "back", "repeat": "repeat", "again": "repeat",
        "lessons": "lessons", "lesson": "lessons", "outline": "lessons", "curriculum": "lessons", "where am i": "where",
        "where am i now": "where", "progress": "where"}


def chat_turn(text: str, session: "Session") -> "Iterable[Reply] | None":
    """Lesson navigation and quiz answers; None when the message is neither (search takes it)."""
    words = re.sub(r"[\s?!.]+$", "", text.strip().lower())
    action = _NAV.get(words)
    m = re.fullmatch(r"(?:lesson|go to lesson|open lesson)\s+(\S+)", words)
    tutor = session.tutor
    cur, store = tutor.curriculum, tutor.progress
    if action is None and m is None:
        progress = store.load(session.learner_id)
        step = _current_step(cur, progress)
        if step is not None and step.quiz and _looks_like_answer(step.quiz, text):
            return [_grade(cur, progress, step.quiz, text, session)]
        return None
    from .tools import Reply

    if not cur.lessons:
        return [Reply(text="No lessons are installed. Check `tutor lessons validate`.", error=True)]
    progress = store.load(session.learner_id)
    if m is not None:
        lesson = cur.find(m.group(1))
        if lesson is None:
            from .commands import suggest
            return [Reply(text=f"There is no lesson {m.group(1)!r}.{suggest(m.group(1), [l.id for l in cur.lessons])} "
                               "Say `lessons` for the list; `lesson 3` or `lesson ID` opens one.",
                          buttons=["lessons"])]
        progress.lesson, progress.step, progress.quiz_tries = lesson.id, 0, 0
    elif action == "lessons":
        return [Reply(text=outline_markdown(cur, progress), data={"outline": outline(cur, progress)})]
    elif action == "where":
        return [_where(cur, progress)]
    elif action == "start" or (action == "next" and progress.lesson is None):
        if progress.lesson is None or cur.get(progress.lesson) is None:
            todo = [l for l in cur.lessons if l.id not in progress.done] or cur.lessons
            progress.lesson, progress.step = todo[0].id, 0
    elif action == "next":
        return _advance(cur, progress, session, +1)
    elif action == "back":
        return _advance(cur, progress, session, -1)
    if cur.get(progress.lesson) is None:  # the lesson was removed since: start over
        progress.lesson, progress.step = cur.lessons[0].id, 0
    store.save(session.learner_id, progress)
    return show_step(cur, progress, session)


def _current_step(cur: Curriculum, progress: "Progress") -> Step | None:
    lesson = cur.get(progress.lesson) if progress.lesson else None
    if lesson is None or not 0 <= progress.step < len(lesson.steps):
        return None
    return lesson.steps[progress.step]


def _advance(cur: Curriculum, progress: "Progress", session: "Session", delta: int) -> Iterable["Reply"]:
    from .tools import Reply

    lesson = cur.get(progress.lesson)
    if lesson is None:
        progress.lesson, progress.step = cur.lessons[0].id, 0
    else:
        i = cur.index(lesson.id)
        progress.step += delta
        progress.quiz_tries = 0
        if progress.step >= len(lesson.steps):  # finished this lesson
            if lesson.id not in progress.done:
                progress.done.append(lesson.id)
            if i + 1 >= len(cur.lessons):
                progress.step = len(lesson.steps) - 1
                session.tutor.progress.save(session.learner_id, progress)
                return [Reply(text=f"✅ **{lesson.title}** done — and that was the last lesson. You finished "
                                   f"{len(progress.done)} of {len(cur.lessons)} lessons. Say `lessons` to revisit any.",
                              data={"finished": True, "done": progress.done})]
            progress.lesson, progress.step = cur.lessons[i + 1].id, 0
        elif progress.step < 0:
            if i == 0:
                progress.step = 0
            else:
                prev = cur.lessons[i - 1]
                progress.lesson, progress.step = prev.id, len(prev.steps) - 1
    session.tutor.progress.save(session.learner_id, progress)
    return show_step(cur, progress, session, finished=lesson.title if lesson and progress.lesson != lesson.id
                     and delta > 0 else None)


def _where(cur: Curriculum, progress: "Progress") -> "Reply":
    from .tools import Reply

    lesson = cur.get(progress.lesson) if progress.lesson else None
    data = {"lesson": progress.lesson, "step": progress.step + 1 if lesson else None, "done": progress.done}
    if lesson is None:
        return Reply(text=f"You have not started a lesson yet ({len(progress.done)} of {len(cur.lessons)} done). "
                          "Say `start` to begin, or `lessons` for the outline.", data=data, buttons=["start"])
    n = cur.index(lesson.id) + 1
    return Reply(text=f"You are in lesson {n} of {len(cur.lessons)}, **{lesson.title}** "
                      f"({MODULE_TITLES[lesson.module]}), at step {progress.step + 1} of {len(lesson.steps)}. "
                      f"{len(progress.done)} lessons done. Say `repeat` to see this step again or `next` to go on.",
                 data=data)


def show_step(cur: Curriculum, progress: "Progress", session: "Session",
              finished: str | None = None) -> Iterable["Reply"]:
    """The replies for the learner's current step. A run step streams its tool's replies."""
    from dataclasses import replace

    from . import chat, commands
    from .tools import Reply, ToolError

    lesson = cur.get(progress.lesson)
    step = lesson.steps[progress.step]
    n = cur.index(lesson.id) + 1
    head = (f"✅ *{finished}* done.\n\n" if finished else "") + \
        f"**Lesson {n} · {lesson.title}** — step {progress.step + 1} of {len(lesson.steps)}\n\n"
    foot = "\n\n*Say `next` to go on, `back` to go back.*"
    data = {"lesson": lesson.id, "step": progress.step + 1, "kind": step.kind}
    if step.text is not None:
        return [Reply(text=head + step.text + foot, data=data)]
    if step.quiz:
        q = step.quiz
        body = f"❓ {q.question}\n\n"
        body += "\n".join(f"{chr(65 + i)}) {c}" for i, c in enumerate(q.choices)) + (
            "\n\n*Answer with a letter or the answer itself.*" if q.choices else "*Type your answer.*")
        return [Reply(text=head + body, data=data, buttons=[chr(65 + i) for i in range(len(q.choices))])]
    if step.try_:
        return [Reply(text=head + (step.say + "\n\n" if step.say else "") + f"Try it: `{step.try_}` — press the "
                      "button, or edit the command and send it yourself." + foot, data=data, buttons=[step.try_])]
    line = step.command
    say = (step.say + "\n\n" if step.say else "") + f"`{line}`\n\n"

    def stream() -> Iterable[Reply]:
        tutor = session.tutor
        try:
            call = commands.parse(line, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
        except ToolError as e:
            yield Reply(text=head + say + f"⚠️ This step needs a tool that cannot run here: {e}" + foot, data=data)
            return
        last = Reply()
        for last in chat.run_tool(call, session):
            if not last.done:
                yield replace(last, text=head + say + last.text)
        extra = ""
        if step.check and not last.error:
            lines = [f"{'✔' if ok else '✘'} {exp.describe()} (found {found})"
                     for exp in step.check.expect for ok, found in [exp.test(last.data)]]
            extra = f"\n\n**Checked live:** {step.check.claim}\n\n" + "\n".join(f"- {l}" for l in lines)
        yield replace(last, text=head + say + last.text + extra + foot, data={**data, "tool": last.data},
                      buttons=[line, *last.buttons])
    return stream()


def _norm(s: str) -> str:
    return re.sub(r"[\s,]+", " ", s.strip().lower()).strip(" .!)\"'`")


def _looks_like_answer(quiz: Quiz, text: str) -> bool:
    t = _norm(re.sub(r"^(my answer is|answer|it'?s|it is)\s*:?\s*", "", text.strip(), flags=re.I))
    if quiz.choices:
        return _choice(quiz.choices, t) is not None
    return not text.strip().endswith("?")  # a short answer; a question goes to search


def _choice(choices: list[str], t: str) -> str | None:
    """The choice a learner means: its text first (a choice may itself be "6"), then a letter
    (a, b, ...), then a number (1, 2, ...); None when it is none of them."""
    for c in choices:
        if _norm(c) == t:
            return c
    if len(t) == 1 and "a" <= t <= chr(96 + len(choices)):
        return choices[ord(t) - 97]
    if t.isdigit() and 1 <= int(t) <= len(choices):
        return choices[int(t) - 1]
    return None


def _grade(cur: Curriculum, progress: "Progress", quiz: Quiz, text: str, session: "Session") -> "Reply":
    from .tools import Reply

    t = _norm(re.sub(r"^(my answer is|answer|it'?s|it is)\s*:?\s*", "", text.strip(), flags=re.I))
    if quiz.choices:
        given = _choice(quiz.choices, t)  # never None: chat_turn only grades what looks like an answer
        right = given == quiz.answer
    else:
        given = text.strip()
        right = t in {_norm(a) for a in quiz.accepted}
    key = f"{progress.lesson}:{progress.step}"
    if right:
        progress.answered[key] = progress.quiz_tries == 0
        progress.quiz_tries = 0
        session.tutor.progress.save(session.learner_id, progress)
        return Reply(text=f"✔ Right: **{quiz.accepted[0]}**.\n\n{quiz.explanation}\n\n*Say `next` to go on.*",
                     data={"correct": True, "answer": quiz.accepted[0]}, buttons=["next"])
    progress.quiz_tries += 1
    progress.answered.setdefault(key, False)
    session.tutor.progress.save(session.learner_id, progress)
    if progress.quiz_tries >= 3:  # after three tries, show the answer rather than stall
        return Reply(text=f"✘ Not {given!r}. The answer is **{quiz.accepted[0]}**.\n\n{quiz.explanation}\n\n"
                          "*Say `next` to go on.*", data={"correct": False, "answer": quiz.accepted[0]})
    hint = quiz.hint or "Read the step before this one again, or try the command it offers."
    return Reply(text=f"✘ Not {given!r}. Hint: {hint}\n\n*Try again, or say `next` to skip.*",
                 data={"correct": False, "tries": progress.quiz_tries})

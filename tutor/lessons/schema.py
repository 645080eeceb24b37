"""The lesson YAML schema: strict pydantic models (unknown keys are errors), and the dotted data
paths a check's expectations read.

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
by `checks.validate` and run for real by `checks.run_checks`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class LessonStep(_Strict):
    """Exactly one of the kinds; `say` is markdown shown before a run/try/check."""

    text: str | None = None
    run: str | None = None
    try_: str | None = Field(None, alias="try")
    quiz: Quiz | None = None
    check: Check | None = None
    say: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="after")
    def _one_kind(self) -> "LessonStep":
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
    steps: list[LessonStep] = Field(min_length=1)

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

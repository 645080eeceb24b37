"""Numbers a lesson states that none of its checks asserts.

A lesson never states a computable fact without a check step that computes it. `unchecked`
reads the prose of one lesson (title, summary, text steps, `say` lines) and returns every number
that no check of the same lesson covers. A check covers a number when it appears

- as an expected value (`equals`, `one_of`, `contains`, a list item), also inside an expected
  string: asserting the formula "768 x 2304 + 2304 = 1,771,776" covers all three numbers;
- as a `between` range no wider than the number's own precision (0.046 is covered by
  [0.0455, 0.0465], not by [0, 1]);
- in the check's command or setup (`--size 224`): the input the computed value depends on (a
  lesson's run and try commands count too: they are inputs the lesson chose).

Rounding is allowed at the precision written: "38.6 million" is covered by 38,597,376, "47%" by
0.4698. Not facts, so never reported: numbers in code (`n_layer=6`, indented blocks), numbers
inside names (GPT-2, r50k_base, h.0, ViT-Base/16, Llama 3), years (1900-2099, written without a
comma), markdown list markers, and 0 and 1 (arithmetic, as in "the weights sum to 1"). Anything else that is not a computable fact (a published figure, a
worked example's input) goes in the lesson folder's allowlist with its reason: `allowed`.

    >>> from tutor.lessons import Lesson
    >>> l = Lesson.model_validate({"id": "x", "title": "t", "module": "architecture", "order": 1,
    ...     "steps": [{"text": "It has 768 numbers and 12 heads (Vaswani, 2017)."}, {"try": "/count a"},
    ...               {"check": {"command": "/inspect m", "claim": "c", "expect": [{"path": "w", "equals": 768}]}}]})
    >>> [n.text for n in unchecked(l)]
    ['12']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .curriculum import Curriculum, Problem
    from .schema import Check, Lesson

ALLOW_FILE = "allowed-numbers.toml"  # in a lesson folder: lesson id -> {number as written: why}

SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3, "M": 1e6, "B": 1e9,
          "kHz": 1e3}
# A number standing alone: not glued to a letter, hyphen, dot, slash or underscore on either side
# (that is a name: GPT-2, r50k, h.0, Base/16), with an optional scale word and percent sign.
NUMBER = re.compile(r"(?<![\w.\-/\\])(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?(?P<exp>e-?\d+)?"
                    r"(?:(?P<pct>%)|\s*(?P<word>thousand|million|billion|trillion)\b|\s?(?P<unit>kHz|[kMB])\b)?"
                    r"(?![\w\-/]|\.\d)")
CODE = re.compile(r"`[^`\n]*`|^(?: {4}|\t).*$", re.M)  # inline code and indented code blocks
LIST_MARKER = re.compile(r"^\s*\d+\.\s", re.M)
# a version in a model's name, not a count: Llama 3, Llama 1 and 2, Gemini 1.0
NAMES = re.compile(r"\b(?:Llama|Gemini|Gemma|Mistral|Qwen|Phi|Claude)\s\d+(?:\.\d+)?(?:\s(?:and|or)\s\d+(?:\.\d+)?)?")


@dataclass(frozen=True)
class Number:
    text: str  # as written, e.g. "38.6 million"
    value: float  # 38_600_000
    tolerance: float  # half of the last written digit's place, times the scale
    step: int | None  # index in lesson.steps; None for the title or summary
    offset: int  # character position in that prose (for the line number)


def numbers_in(prose: str, step: int | None = None) -> list[Number]:
    """Every stated number in a piece of markdown, with code, years and list markers left out."""
    blank = CODE.sub(lambda m: " " * len(m.group()), prose)
    blank = LIST_MARKER.sub(lambda m: " " * len(m.group()), blank)
    blank = NAMES.sub(lambda m: " " * len(m.group()), blank)
    found = []
    for m in NUMBER.finditer(blank):
        digits = m["num"].replace(",", "") + (m["frac"] or "")
        value = float(digits + (m["exp"] or ""))
        if m["exp"] is None and m["frac"] is None and "," not in m["num"] and 1900 <= value <= 2099:
            continue  # a year
        if value in (0, 1) and not (m["pct"] or m["word"] or m["unit"]):
            continue  # 0 and 1 are arithmetic ("sum to 1", "close to 0"), not facts about a model
        places = len(m["frac"]) - 1 if m["frac"] else 0
        scale = SCALES.get(m["word"] or m["unit"] or "", 1.0) * (0.01 if m["pct"] else 1.0)
        half = 0.5 * 10 ** -places * (10 ** int(m["exp"][1:]) if m["exp"] else 1)
        # an integer written exactly is exact (768 means 768), unless scaled: "4.7 million" is rounded
        tol = half * scale if (places or scale != 1.0) else 1e-9
        found.append(Number(m.group().strip(), value * scale, tol, step, m.start()))
    return found


def _values(x: Any) -> Iterable[float]:
    """Every number inside an expected value: numbers, list items, dict values, digits in strings."""
    if isinstance(x, bool) or x is None:
        return
    if isinstance(x, (int, float)):
        yield float(x)
    elif isinstance(x, str):
        for n in numbers_in(x.replace("`", "")):
            yield n.value
        for m in re.finditer(r"\d+(?:\.\d+)?", x):  # also digits inside names in a command: --top-k 10
            yield float(m.group())
    elif isinstance(x, dict):
        for v in x.values():
            yield from _values(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _values(v)


def covered(check: "Check") -> tuple[list[float], list[tuple[float, float]]]:
    """(values, ranges) a check asserts or uses."""
    values = list(_values([check.command, *check.setup]))
    ranges = []
    for e in check.expect:
        values += _values([e.equals, e.contains, e.one_of, e.length])
        if e.between is not None:
            ranges.append((float(e.between[0]), float(e.between[1])))
    return values, ranges


def _is_covered(n: Number, values: list[float], ranges: list[tuple[float, float]]) -> bool:
    if any(abs(v - n.value) <= max(n.tolerance, 1e-9 * abs(v)) for v in values):
        return True
    return any(lo - 1e-12 <= n.value <= hi + 1e-12 and hi - lo <= 2 * n.tolerance + 1e-12 for lo, hi in ranges)


def prose_of(lesson: "Lesson") -> list[tuple[int | None, str]]:
    parts: list[tuple[int | None, str]] = [(None, lesson.title), (None, lesson.summary)]
    for i, step in enumerate(lesson.steps):
        for prose in (step.text, step.say):
            if prose:
                parts.append((i, prose))
    return parts


def unchecked(lesson: "Lesson", allowed: Iterable[str] = ()) -> list[Number]:
    """The numbers in `lesson`'s prose that none of its checks covers and `allowed` does not name."""
    # the lesson's own run and try commands are inputs it chose (`--size 384`), not claims
    values: list[float] = list(_values([s.command for s in lesson.steps if s.kind in ("run", "try")]))
    ranges: list[tuple[float, float]] = []
    for check in lesson.checks:
        v, r = covered(check)
        values += v
        ranges += r
    allowed = {a.strip() for a in allowed}
    out = []
    for step, prose in prose_of(lesson):
        for n in numbers_in(prose, step):
            if n.text not in allowed and not _is_covered(n, values, ranges):
                out.append(n)
    return out


def allowed(folder: Path) -> dict[str, dict[str, str]]:
    """The lesson folder's allowlist: lesson id -> {number as written: why it needs no check}."""
    import tomllib

    path = folder / ALLOW_FILE
    if not path.is_file():
        return {}
    return {k: {str(n): str(why) for n, why in v.items()} for k, v in tomllib.loads(path.read_text("utf-8")).items()}


def problems(cur: "Curriculum") -> list["Problem"]:
    """One problem per unchecked number in the curriculum, with its file and line."""
    from .curriculum import Problem

    lists: dict[Path, dict] = {}
    out = []
    for lesson in cur.lessons:
        src = cur.sources[lesson.id]
        folder = src.path.parent
        allow = lists.setdefault(folder, allowed(folder)).get(lesson.id, {})
        texts = dict((i, t) for i, t in prose_of(lesson) if i is not None)
        for n in unchecked(lesson, allow):
            if n.step is None:
                line = src.line(("title",))
            else:  # a block scalar's first line is the one after its key
                key = "text" if lesson.steps[n.step].text else "say"
                start = src.line(("steps", n.step, key))
                line = start + (texts[n.step][:n.offset].count("\n") + 1 if key == "text" else 0)
            problem = Problem(str(src.path), line, f"{n.text} is stated but no check of {lesson.id} asserts it "
                                                   f"(add a check that computes it, or list it in {ALLOW_FILE} "
                                                   "with why it is not a computable fact)", kind="unchecked number")
            if problem not in out:
                out.append(problem)
    return out

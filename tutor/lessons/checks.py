"""Validation of every lesson command against its tool's schema, and check steps run for real."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .. import commands
from ..calls import last_reply
from ..tools import Reply, ToolError
from . import numbers
from .curriculum import Curriculum, Problem, load_curriculum
from .schema import Check

if TYPE_CHECKING:
    from ..context import Session
    from ..plugins import Registry

# ---- validation against the tools ----------------------------------------------------------

def validate(registry: Registry, paths: Iterable[Path] | None = None, max_chars: int = 200_000) -> tuple[Curriculum, list[Problem]]:
    """Load and check every lesson: schema, graph, and every command against its tool's schema."""
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
    problems += numbers.problems(cur)  # a stated number that no check of its lesson asserts
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


def run_check(check: Check, session: Session) -> tuple[bool, list[str], Reply]:
    """Run one check's setup and command in `session`; test every expectation on the data."""
    for line in check.setup:
        reply = last_reply(line, session)
        if reply.error:
            return False, [f"setup {line!r} failed: {reply.text}"], reply
    reply = last_reply(check.command, session)
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

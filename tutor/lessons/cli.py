"""`tutor lessons [--json] | show ID | validate [PATH...] | check`: the curriculum in the terminal."""

from __future__ import annotations

import argparse
import json
import sys

from ..context import Tutor
from .checks import run_checks, validate
from .schema import Lesson


def run(tutor: Tutor, args: argparse.Namespace) -> int:
    command = args.lessons_command
    if command == "show":
        return show(tutor, args.lesson)
    if command == "validate":
        return validate_cmd(tutor, args.paths or None)
    if command == "check":
        return check(tutor, args.lesson, args.skip_missing)
    return list_lessons(tutor, args.json)


def list_lessons(tutor: Tutor, as_json: bool) -> int:
    cur = tutor.curriculum
    rows = [{"id": l.id, "title": l.title, "module": l.module, "order": int(l.order) if l.order.is_integer() else l.order, "steps": len(l.steps),
             "checks": len(l.checks), "plugin": cur.sources[l.id].plugin} for l in cur.lessons]
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        module = None
        for n, r in enumerate(rows, 1):
            if r["module"] != module:
                module = r["module"]
                print(f"\n{module}")
            print(f"  {n:>2}. {r['id']:<28} {r['title']}  ({r['steps']} steps, {r['checks']} checks)")
    for p in cur.problems:
        print(f"problem: {p}", file=sys.stderr)
    return 0


def show(tutor: Tutor, word: str) -> int:
    cur = tutor.curriculum
    lesson = cur.find(word)
    if lesson is None:
        print(f"No lesson {word!r}. `tutor lessons` lists them.", file=sys.stderr)
        return 1
    print(render(lesson, cur.index(lesson.id) + 1))
    return 0


def render(lesson: Lesson, number: int) -> str:
    """A lesson as plain text: every step, commands shown as the learner would type them."""
    out = [f"Lesson {number}: {lesson.title}  [{lesson.id}, module {lesson.module}]"]
    if lesson.summary:
        out.append(lesson.summary)
    if lesson.prerequisites:
        out.append("Builds on: " + ", ".join(lesson.prerequisites))
    for i, step in enumerate(lesson.steps, 1):
        out.append(f"\n--- step {i} ({step.kind})")
        if step.say:
            out.append(step.say.strip())
        if step.text:
            out.append(step.text.strip())
        elif step.quiz:
            q = step.quiz
            out.append(q.question)
            out += [f"  {chr(65 + j)}) {c}" for j, c in enumerate(q.choices)]
            out.append(f"  answer: {', '.join(q.accepted)}\n  why: {q.explanation.strip()}")
            if q.hint:
                out.append(f"  hint: {q.hint}")
        elif step.check:
            out.append(f"$ {step.check.command}\n  claim: {step.check.claim}")
            out += [f"  expect {e.describe()}" for e in step.check.expect]
        else:
            out.append(f"$ {step.command}")
    return "\n".join(out)


def validate_cmd(tutor: Tutor, paths) -> int:
    cur, problems = validate(tutor.registry, paths, tutor.settings.max_input_chars)
    for p in problems:
        print(f"{p}" + (" (is its plugin installed?)" if p.kind == "unknown tool" else ""))
    steps = sum(len(l.steps) for l in cur.lessons)
    print(f"{len(cur.lessons)} lessons, {steps} steps, {sum(len(l.checks) for l in cur.lessons)} checks: "
          f"{len(problems)} problem{'s' * (len(problems) != 1)}.", file=sys.stderr)
    return 1 if problems else 0


def check(tutor: Tutor, only, skip_missing: bool) -> int:
    results = run_checks(tutor.curriculum, tutor, only, skip_missing)
    for r in results:
        status = "skip" if r.skipped else "pass" if r.passed else "FAIL"
        print(f"{status}  {r.lesson} step {r.step}: {r.command}")
        if not r.passed and not r.skipped:
            print(f"      claim: {r.claim}")
            for d in r.details:
                print(f"      {d}")
    failed = sum(not r.passed and not r.skipped for r in results)
    skipped = sum(r.skipped for r in results)
    print(f"{len(results) - failed - skipped} passed, {failed} failed, {skipped} skipped.", file=sys.stderr)
    return 1 if failed else 0

"""Lessons: YAML files -> strict models; the curriculum in teaching order; checks; tutoring.

    schema.py      the YAML schema (pydantic, unknown keys rejected) and dotted data paths
    curriculum.py  loading with line numbers, teaching order, prerequisites, the outline
    progress.py    where each learner is: store interface, SQLite store
    search.py      BM25 over lesson passages (free questions)
    checks.py      every command validated against its tool; check steps run for real
    tutoring.py    the turn handlers: navigation, steps, quizzes, free questions
    cli.py         `tutor lessons` list / show / validate / check

The package re-exports the data layer only (schema and curriculum), which sits below the Tutor
(context.py loads the curriculum). checks, tutoring and cli run tools, so they sit above it:
import them by their module path (`from tutor.lessons.checks import validate`).
"""

from .curriculum import (Curriculum, Problem, Source, lesson_dirs, load_curriculum, load_file, outline,
                         outline_for, outline_markdown)
from .schema import MODULE_TITLES, MODULES, Check, Expect, Lesson, LessonStep, Quiz, resolve

__all__ = ["Curriculum", "Problem", "Source", "lesson_dirs", "load_curriculum", "load_file", "outline", "outline_for",
           "outline_markdown", "MODULE_TITLES", "MODULES", "Check", "Expect", "Lesson", "LessonStep", "Quiz", "resolve"]

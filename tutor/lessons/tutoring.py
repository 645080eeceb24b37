"""The lesson turn handlers: navigation ("next", "back", "lesson 4", "where am I"), showing a
step (a run step streams its tool's replies), grading quiz answers, and free questions answered
from the lessons."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from .. import commands
from ..calls import run_tool
from ..commands import suggest
from ..tools import Reply, ToolError
from .curriculum import Curriculum, outline, outline_markdown
from .progress import Progress
from .schema import MODULE_TITLES, Lesson, LessonStep, Quiz

if TYPE_CHECKING:
    from ..context import Session

# ---- the chat: navigation and quizzes -------------------------------------------------------

_NAV = {"start": "start", "begin": "start", "resume": "start", "continue": "start", "next": "next",
        "n": "next", "back": "back", "previous": "back", "prev": "back", "repeat": "repeat",
        "lessons": "lessons", "lesson": "lessons", "outline": "lessons", "curriculum": "lessons", "where am i": "where",
        "where am i now": "where", "progress": "where"}


def chat_turn(text: str, session: Session) -> Iterable[Reply] | None:
    """Lesson navigation and quiz answers; None when the message is neither (search takes it)."""
    words = re.sub(r"[\s?!.]+$", "", text.strip().lower())
    action = _NAV.get(words)
    m = re.fullmatch(r"(?:lesson|go to lesson|open lesson)\s+(\S+)(?:\s+(?:step\s+)?(\d+))?", words)
    tutor = session.tutor
    cur, store = tutor.curriculum, tutor.progress
    if action is None and m is None:
        progress = store.load(session.learner_id)
        step = _current_step(cur, progress)
        if step is not None and step.quiz and _looks_like_answer(step.quiz, text):
            return [_grade(cur, progress, step.quiz, text, session)]
        return None
    if not cur.lessons:
        return [Reply(text="No lessons are installed. Check `tutor lessons validate`.", error=True)]
    progress = store.load(session.learner_id)
    if m is not None:
        lesson = cur.find(m.group(1))
        if lesson is None:
            return [Reply(text=f"There is no lesson {m.group(1)!r}.{suggest(m.group(1), [l.id for l in cur.lessons])} "
                               "Say `lessons` for the list; `lesson 3` or `lesson ID` opens one.",
                          buttons=["lessons"])]
        step = min(max(int(m.group(2) or 1), 1), len(lesson.steps)) - 1  # `lesson ID STEP` opens at a step
        progress.lesson, progress.step, progress.quiz_tries = lesson.id, step, 0
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


def _current_step(cur: Curriculum, progress: Progress) -> LessonStep | None:
    lesson = cur.get(progress.lesson) if progress.lesson else None
    if lesson is None or not 0 <= progress.step < len(lesson.steps):
        return None
    return lesson.steps[progress.step]


def _advance(cur: Curriculum, progress: Progress, session: Session, delta: int) -> Iterable[Reply]:
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


def _where(cur: Curriculum, progress: Progress) -> Reply:
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


def show_step(cur: Curriculum, progress: Progress, session: Session,
              finished: str | None = None) -> Iterable[Reply]:
    """The replies for the learner's current step. A run step streams its tool's replies."""
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
        for last in run_tool(call, session):
            if not last.done:
                yield replace(last, text=head + say + last.text)
        extra = ""
        if step.check and not last.error:
            lines = [f"{'✔' if ok else '✘'} {exp.describe()} (found {found})"
                     for exp in step.check.expect for ok, found in [exp.test(last.data)]]
            extra = f"\n\n**Checked live:** {step.check.claim}\n\n" + "\n".join(f"- {l}" for l in lines)
            if _ran_before(lesson, progress.step, line):  # its output is on screen already: only the check
                last = Reply(text="(Its output is in the step above; checked again just now.)", data=last.data)
        yield replace(last, text=head + say + last.text + extra + foot, data={**data, "tool": last.data},
                      buttons=[line, *last.buttons])
    return stream()


def _ran_before(lesson: Lesson, index: int, line: str) -> bool:
    """Whether an earlier step of the lesson ran the same command (a check repeats it)."""
    return any(s.run is not None and s.run.strip() == line.strip() for s in lesson.steps[:index])


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


def _grade(cur: Curriculum, progress: Progress, quiz: Quiz, text: str, session: Session) -> Reply:
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

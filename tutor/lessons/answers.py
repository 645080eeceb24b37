"""A free question's answer from retrieval: the whole step, where it comes from, what shows it.

    covered      "From lesson 4 · Self-attention… (step 3 of 7)", the step as it is in the lesson,
                 a button that opens the lesson at that step and the tools that demonstrate it;
    not covered  said plainly, with the nearest lessons offered (off-topic questions land here).

`passages` turns the same hits into the explainer seam's Passages (tutor/explainer.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..explainer import Passage
from ..tools import Reply

# A quiz scored within this of the text step it quizzes on comes after that step (search.py) and
# is shown with it, whole, in the answer.
QUIZ_MARGIN = 0.05

if TYPE_CHECKING:  # search.py's Hit, StepDoc and LessonSearch are named, not imported: it imports us
    from .curriculum import Curriculum


def _commands(cur: "Curriculum", doc: Any) -> list[str]:
    """The step's own commands, else the lesson's first ones (a quiz shows what its lesson runs)."""
    lesson = cur.get(doc.lesson)
    return list(doc.commands[:3]) or (lesson.commands[:2] if lesson else [])


def _label(cur: "Curriculum", lesson_id: str) -> str:
    lesson = cur.get(lesson_id)
    return f"lesson {cur.index(lesson_id) + 1} · {lesson.title}"


def _match(hit: Any) -> dict:
    return {"lesson": hit.doc.lesson, "step": hit.doc.step, "score": round(hit.score, 3)}


def _its_quiz(hits: list[Any]) -> Any:
    """The quiz right behind a text step of its own lesson, scored nearly as high (search.py puts
    such a quiz behind the step it quizzes on), or None."""
    if len(hits) > 1 and hits[0].doc.kind == "text" and hits[1].doc.kind == "quiz" and \
            hits[1].doc.lesson == hits[0].doc.lesson and hits[1].score >= hits[0].score - QUIZ_MARGIN:
        return hits[1].doc
    return None


def covered_reply(cur: "Curriculum", hits: list[Any], lead: str = "") -> Reply:
    top = hits[0].doc
    lesson = cur.get(top.lesson)
    others = []
    for h in hits[1:]:
        if h.doc.lesson != top.lesson and h.doc.lesson not in others and h.score >= 0.8 * hits[0].score:
            others.append(h.doc.lesson)
    parts = [lead] if lead else []
    parts += [f"From **{_label(cur, top.lesson)}** (step {top.step} of {len(lesson.steps)}):", "", top.shown]
    quiz = _its_quiz(hits)
    if quiz is not None:  # the explanation leads; the quiz on it, as close an answer, follows whole
        parts += ["", f"Step {quiz.step} quizzes on it:", "", quiz.shown]
    if others:
        parts += ["", "See also: " + ", ".join(_label(cur, o) for o in others[:2]) + "."]
    opener = f"lesson {top.lesson} {top.step}"
    parts += ["", f"*Say `{opener}` to open the lesson at this step.*"]
    return Reply(text="\n".join(parts), buttons=[opener, *_commands(cur, top)],
                 data={"covered": True, "lesson": top.lesson, "step": top.step,
                       "matches": [_match(h) for h in hits[:3]]})


def not_covered_reply(cur: "Curriculum", hits: list[Any]) -> Reply:
    near: list[str] = []
    for h in hits:
        if h.doc.lesson not in near:
            near.append(h.doc.lesson)
    text = "The lessons don't cover that, as far as I can tell."
    if near[:2]:
        text += " The nearest are " + " and ".join(_label(cur, n) for n in near[:2]) + "."
    text += " Say `lessons` for the outline, or `/help` for the tools you can run yourself."
    return Reply(text=text, buttons=[*(f"lesson {n}" for n in near[:2]), "lessons", "/help"],
                 data={"covered": False, "matches": [_match(h) for h in hits[:3]]})


def answer(retriever: Any, question: str) -> tuple[Reply, list[Any]]:
    """The retrieval answer to a free question, and the hits it came from."""
    hits = retriever.rank(question, k=8)
    if retriever.covered(hits, question):
        return covered_reply(retriever.cur, hits), hits
    return not_covered_reply(retriever.cur, hits), hits


def passages(cur: "Curriculum", hits: list[Any], k: int = 3) -> list[Passage]:
    """The best k steps as the explainer's grounding passages."""
    return [Passage(h.doc.lesson, h.doc.title, h.doc.step, h.doc.shown, tuple(_commands(cur, h.doc)), h.score)
            for h in hits[:k]]

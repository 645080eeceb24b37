"""Free questions answered from the curriculum: BM25 (the bm25s library) over lesson passages.

Each passage is a paragraph of a text step, a quiz's question with its explanation, or a
check's claim, indexed together with its lesson's title and summary (so a question that names
the topic finds the lesson even when the paragraph does not repeat the word). The answer is
the best passage, with its lesson and that lesson's commands as buttons; below a score
threshold the reply says plainly that the lessons do not cover the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import logging

import bm25s
from bm25s.stopwords import STOPWORDS_EN_PLUS

from ..tools import Reply

if TYPE_CHECKING:
    from .curriculum import Curriculum

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

# A question is answered only when more than MIN_COVERAGE of its content words occur somewhere in
# the lessons and the best passage scores at least MIN_SCORE. BM25 scores alone do not separate
# "what is GELU?" (one rare word, low score) from "what is the capital of Mongolia?" (one common
# word matched); the share of known words does. Calibrated on tests/data/questions.yaml.
MIN_SCORE = 1.0
MIN_COVERAGE = 0.5
TITLE_WEIGHT = 0.5  # how much a match in the lesson's title adds to each of its passages' scores


@dataclass(frozen=True)
class Passage:
    lesson: str
    step: int  # 1-based step number in its lesson
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float


def _stem(word: str) -> str:
    """A light suffix stripper (plurals, -ing, -ed) so 'merges' finds 'merge' and 'tokens' 'token'."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def _tokens(texts: list[str]) -> list[list[str]]:
    # Numbers such as 50,257 or 3,072 are kept whole (commas dropped) so "50257" matches "50,257".
    texts = [re.sub(r"(?<=\d),(?=\d{3})", "", t) for t in texts]
    return bm25s.tokenize(texts, stopwords=STOPWORDS_EN_PLUS, stemmer=lambda ws: [_stem(w) for w in ws],
                          return_ids=False, show_progress=False)


def passages(cur: "Curriculum") -> list[Passage]:
    out = []
    for lesson in cur.lessons:
        if lesson.summary:  # the lesson's own one-line answer: short, so a one-word topic finds it
            out.append(Passage(lesson.id, 1, f"{lesson.title}: {lesson.summary}"))
        for i, step in enumerate(lesson.steps, 1):
            if step.text:
                out += [Passage(lesson.id, i, p.strip()) for p in re.split(r"\n\s*\n", step.text) if len(p.strip()) > 40]
            elif step.quiz:
                out.append(Passage(lesson.id, i, f"{step.quiz.question} {step.quiz.explanation}"))
            elif step.check:
                out.append(Passage(lesson.id, i, step.check.claim))
            elif step.say:
                out.append(Passage(lesson.id, i, step.say))
    return out


class LessonSearch:
    def __init__(self, cur: "Curriculum"):
        self.cur = cur
        self.passages = passages(cur)
        heads = {l.id: f"{l.title}. {l.summary}" for l in cur.lessons}
        corpus = _tokens([f"{heads[p.lesson]} {p.text}" for p in self.passages])
        order = {l.id: i for i, l in enumerate(cur.lessons)}
        self.lesson_of = [order[p.lesson] for p in self.passages]  # passage -> lesson row in self.titles
        self.words = {w for doc in corpus for w in doc}  # every word the lessons use
        self.index = bm25s.BM25()
        self.titles = bm25s.BM25()  # one short document per lesson: its title
        if self.passages:
            self.index.index(corpus, show_progress=False)
            self.titles.index(_tokens([l.title for l in cur.lessons]), show_progress=False)

    def coverage(self, question: str) -> float:
        """The share of the question's content words that occur anywhere in the lessons."""
        words = _tokens([question])[0]
        return sum(w in self.words for w in words) / len(words) if words else 0.0

    def search(self, question: str, k: int = 5) -> list[Hit]:
        """The k best passages for the question, best first."""
        if not self.passages:
            return []
        query = _tokens([question])
        if not query[0]:  # only stopwords or punctuation
            return []
        # Score every passage, add the weighted score of its lesson's title, keep the best k.
        scores = self.index.get_scores(query[0]) + TITLE_WEIGHT * self.titles.get_scores(query[0])[self.lesson_of]
        best = scores.argsort()[::-1][:k]
        return [Hit(self.passages[int(i)], float(scores[i])) for i in best if scores[i] > 0]

    def lessons_for(self, question: str, k: int = 3) -> list[str]:
        """The best k distinct lesson ids for the question (what the accuracy test measures)."""
        seen: list[str] = []
        for hit in self.search(question, k=30):
            if hit.passage.lesson not in seen:
                seen.append(hit.passage.lesson)
        return seen[:k]

    def answer(self, question: str) -> "Reply":
        hits = self.search(question, k=10)
        if not hits or hits[0].score < MIN_SCORE or self.coverage(question) <= MIN_COVERAGE:
            best = f" The closest is lesson {self.cur.index(hits[0].passage.lesson) + 1}." if hits else ""
            return Reply(text="The lessons don't cover that, as far as I can tell." + best + " Say `lessons` "
                              "for the outline, or type `/help` for the tools you can run yourself.",
                         data={"covered": False, "matches": [_match(h) for h in hits[:3]]},
                         buttons=["lessons", "/help"])
        top = hits[0]
        lesson = self.cur.get(top.passage.lesson)
        n = self.cur.index(lesson.id) + 1
        parts = [f"From **lesson {n} · {lesson.title}** (step {top.passage.step}):", "", _quote(top.passage.text)]
        others = []
        for h in hits[1:]:
            if h.passage.lesson != lesson.id and h.passage.lesson not in others and h.score >= 0.6 * top.score:
                others.append(h.passage.lesson)
        if others:
            parts += ["", "See also: " + ", ".join(
                f"lesson {self.cur.index(o) + 1} · {self.cur.get(o).title}" for o in others[:2])]
        parts += ["", f"Say `lesson {lesson.id}` to go through it step by step."]
        return Reply(text="\n".join(parts), data={"covered": True, "lesson": lesson.id,
                                                  "matches": [_match(h) for h in hits[:3]]},
                     buttons=[*lesson.commands[:3], f"lesson {lesson.id}"])


def _match(hit: Hit) -> dict:
    return {"lesson": hit.passage.lesson, "step": hit.passage.step, "score": round(hit.score, 3)}


def _quote(text: str, limit: int = 900) -> str:
    text = text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"
    return "\n".join("> " + line for line in text.splitlines())


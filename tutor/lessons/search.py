"""Free questions -> lesson steps: BM25 (bm25s) and MiniLM embeddings, fused per step.

The unit of an answer is one lesson step, shown whole: a text step together with the run, try
and check steps that follow it (their claims help retrieval, their commands become buttons), or
a quiz with its answer and explanation. Each step is scored twice:

    bm25   bm25s over the step's words plus its lesson's title and summary (exact terms: "wte", "GELU")
    dense  cosine between the question and the step's best paragraph, both embedded by the offline
           all-MiniLM-L6-v2 encoder (paraphrases, typos, beginner wording)

and the two are fused (`fuse`). The step embeddings are cached on disk, keyed by a hash of the
model and of every indexed text, so only a changed curriculum is embedded again. Without the
encoder (no package index on a fresh machine) retrieval is BM25 alone and says so in the log.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from ..tools import valid_unicode
from .answers import QUIZ_MARGIN  # a quiz this close to its explanation step yields first place to it

if TYPE_CHECKING:
    from ..tools import Reply
    from .curriculum import Curriculum
    from .schema import Lesson, LessonStep

log = logging.getLogger("tutor.search")
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every index build at DEBUG

ENCODER_MODEL = "minilm-l6"
# Fusion weights and the "covered" bar, set on the tuning half of tests/data/conversation_questions.yaml.
DENSE_WEIGHT = 0.5  # share of the dense cosine in the fused score; the rest is squashed BM25
BM25_SCALE = 4.0  # a raw BM25 score of this size counts as half-sure (s / (s + scale))
# A question is covered when its best step scores MIN_FUSED and most of its content words occur in
# the lessons, or when the step scores SURE whatever the words ("what is a mel spectrogram?").
MIN_FUSED = 0.26
SURE = 0.40
TITLE_WEIGHT = 1.0  # weight of the lesson-title index in the BM25 part
LESSON_WEIGHT = 0.1  # share of a lesson's second-best step added to each of its steps
HEAD_WEIGHT = 0.1  # weight of the cosine between the question and the step's lesson (title and summary)

# Everyday topics no lesson and no tool covers. A question nearer (by the encoder) to one of these
# than to every lesson step is declined, whatever words it shares with the lessons ("what's the
# temperature outside?", "how far away is the moon?"). Topics of ordinary life, not questions.
EVERYDAY = (
    "the weather forecast, rain, sunshine and the temperature outside",
    "write a poem, a song, a haiku or a story for me",
    "football, cricket, basketball and other sports: teams, matches, goals and scores",
    "a cooking recipe: how to bake, boil or cook food",
    "history: wars, kings, presidents and dates",
    "geography: countries, capitals, cities, rivers, mountains and populations",
    "astronomy and physics trivia: the moon, planets, distances",
    "health, medicine, illness, diet and fitness",
    "travel directions, trains, cars and how to get somewhere",
    "shopping, money, taxes, gifts and products to buy",
    "movies, music, books, art and celebrities",
    "jokes, riddles and small talk",
    "pets, family, relationships and personal advice",
    "the time and date in a city",
    "translate a phrase into another language",
    "animals, plants and nature",
    "science homework: chemistry, biology and the human body",
    "maths homework: solve an equation, arithmetic",
    "games: chess, video games and puzzles",
    "news, politics and elections",
    "fashion, clothes and beauty",
    "holidays, festivals and celebrations",
    "religion and philosophy: the meaning of life",
    "jobs, careers, school and exams",
    "home repairs, cleaning and gardening",
    "write an email, a letter, an essay or a CV for me",
    "hobbies and learning a skill: playing the guitar or piano, drawing, dancing, swimming",
)

Encoder = Callable[[Sequence[str]], np.ndarray]  # texts -> (n, d) unit vectors


@dataclass(frozen=True)
class StepDoc:
    """One answerable step: what is shown, what is indexed, and the commands that show it."""

    lesson: str
    title: str
    step: int  # 1-based, as `lesson ID STEP` counts
    kind: str  # "text" or "quiz"
    shown: str  # the whole step, markdown
    indexed: str  # shown + the claims and notes of the steps that illustrate it
    commands: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.shown


@dataclass(frozen=True)
class Hit:
    doc: StepDoc
    score: float
    bm25: float
    dense: float
    everyday: float = -1.0  # the question's nearest everyday topic minus its nearest step (cosines)


def _quiz_text(step: "LessonStep") -> str:
    q = step.quiz
    choices = "".join(f"\n- {c}" for c in q.choices)
    return f"**Quiz:** {q.question}{choices}\n\n**Answer:** {q.accepted[0]}. {q.explanation.strip()}"


def _samples(lesson: "Lesson") -> list[re.Pattern]:
    """The sample texts the lesson's commands run ("Write a short poem about the sea ..."), as
    patterns that ignore line breaks: data a step works on, not what it teaches."""
    out = []
    for step in lesson.steps:
        words = (step.command or "").split()
        for k in range(1, min(4, len(words))):
            if len(words) - k >= 4:
                out.append(re.compile(r"\s+".join(re.escape(w) for w in words[k:])))
    return out


def lesson_docs(lesson: "Lesson") -> list[StepDoc]:
    """The lesson's answerable steps; run/try/check steps join the text step before them. A
    step's sample texts are left out of what is indexed, so "write me a poem about the sea"
    does not find the step that tokenizes such an instruction."""
    docs: list[StepDoc] = []
    head = f"{lesson.title}. {lesson.summary}"
    samples = _samples(lesson)

    def plain(text: str) -> str:
        for pattern in samples:
            text = pattern.sub(" ", text)
        return text

    for i, step in enumerate(lesson.steps, 1):
        if step.kind in ("text", "quiz"):
            shown = step.text.strip() if step.text else _quiz_text(step)
            docs.append(StepDoc(lesson.id, lesson.title, i, step.kind, shown, f"{head}\n{plain(shown)}", ()))
        elif docs and docs[-1].kind == "text":  # illustrates the text step before it
            d = docs[-1]
            tool = step.command.split()[0].lstrip("/")  # the tool's name, never its sample prompt
            extra = " ".join(x for x in (step.say, step.check.claim if step.check else "", tool) if x)
            cmds = d.commands + ((step.command,) if step.command not in d.commands else ())
            docs[-1] = StepDoc(d.lesson, d.title, d.step, d.kind, d.shown, f"{d.indexed}\n{plain(extra)}", cmds)
    return docs


def curriculum_docs(cur: "Curriculum") -> list[StepDoc]:
    return [d for lesson in cur.lessons for d in lesson_docs(lesson)]


def _stem(word: str) -> str:
    """A light suffix stripper (plurals, -ing, -ed) so 'merges' finds 'merge' and 'tokens' 'token'."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


def words(texts: Sequence[str]) -> list[list[str]]:
    """BM25's tokens: stopwords out, light stems; numbers such as 50,257 kept whole (commas dropped)."""
    texts = [re.sub(r"(?<=\d),(?=\d{3})", "", t) for t in texts]
    return bm25s.tokenize(list(texts), stopwords=STOPWORDS_EN_PLUS, stemmer=lambda ws: [_stem(w) for w in ws],
                          return_ids=False, show_progress=False)


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    return [s for s in re.split(r"(?<=[.!?:])\s+(?=[A-Z*`\"(])", text) if len(s) > 15]


def chunks(doc: StepDoc) -> list[str]:
    """What the encoder embeds for one step: each sentence with its lesson's title. Mean pooling
    over a whole paragraph blurs it; a question usually matches one sentence, and a step is
    scored by its best one."""
    body = doc.indexed.split("\n", 1)[1]  # without the lesson head, which every step shares
    return [f"{doc.title}. {s}" for s in _sentences(body)] or [f"{doc.title}. {body}"]


# Words beginners use for what the lessons call otherwise (a small thesaurus of the field, not of
# particular questions), added to a question before it is scored.
SYNONYMS = {
    r"feed[- ]?forward|\bffn\b|fully[- ]connected": "MLP",
    r"\bbackprop\b": "backpropagation gradients",
    r"\bkv[- ]?cache|key[- ]value cache": "key/value cache",
    r"\bd_?k\b|head dim\w*": "head dimension 64",
    r"\bpre-?train\w*": "pre-training",
    r"\bfine-?tun\w*": "fine-tuning",
    r"label+ed|\blabels?\b": "labels answer key",
    r"validation loss|val loss|test loss|eval loss": "held-out loss",
    r"over-?fit\w*": "memorise held-out loss",
    r"going up|goes up|increas\w*|rising|gets worse": "rising",
    r"repeat\w*|repetitive": "repetition",
    r"positional (?:encoding|embedding)s?|order of (?:the )?words|word order": "position embeddings",
    r"layer ?norm\w*": "LayerNorm",
    r"\bvocab\b": "vocabulary",
    r"\bparams\b": "parameters",
    r"\blr\b": "learning rate",
    r"\bllms?\b": "language model",
    r"next word": "next token",
    r"context (?:length|size)|sequence length": "context window positions",
    r"capitali[sz]\w*|upper ?case|lower ?case|capital letters?": "capital letters case",
    r"normali[sz]\w*": "LayerNorm",
    r"causal mask\w*|look[- ]ahead|future tokens?|tokens? after": "causal mask earlier tokens",
    r"\bqkv\b|\bq, ?k(?:,| and) ?v\b": "queries keys values",
    r"embedding (?:matrix|table)|word vectors?|token vectors?": "wte embeddings",
    r"grouped[- ]query|\bgqa\b": "grouped-query attention",
    r"word by word|one word at a time|whole sentence|more than one word|keep (?:on )?writing": "generation loop append",
    r"\bnonsense\b|gibberish|garbage|rubbish": "nonsense random weights",
    r"speed ?up|faster|slower|\bslow\b": "compute cost",
    r"\bgpt-?4o?\b|\bchatgpt\b": "OpenAI",
    r"\bquer(?:y|ies)\b": "queries keys values attention",
    r"\bgradients?\b": "gradient backpropagation",
}


def expand(question: str, vocabulary: list[str]) -> str:
    """The question with typos fixed against the lessons' own words ("atention" -> "attention")
    and the thesaurus's lesson words appended."""
    known = set(vocabulary)
    fixed = []
    for w in question.split():
        core = re.sub(r"[^\w'-]", "", w.lower())
        if len(core) >= 5 and core.isalpha() and core not in known:
            near = difflib.get_close_matches(core, vocabulary, n=1, cutoff=0.85)
            w = near[0] if near else w
        fixed.append(w)
    text = " ".join(fixed)
    extra = [words_ for pattern, words_ in SYNONYMS.items() if re.search(pattern, text, re.I)]
    return " ".join([text, *extra])


def minilm_encoder(tutor) -> Encoder:
    """Mean-pooled, normalised all-MiniLM-L6-v2 embeddings through the tutor's model cache."""
    def encode(texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with tutor.model(ENCODER_MODEL, device="cpu") as lm:  # small; CPU keeps results identical everywhere
            for i in range(0, len(texts), 32):
                batch = lm.tokenizer(list(texts[i:i + 32]), padding=True, truncation=True, max_length=256,
                                     return_tensors="pt")
                with torch.inference_mode():
                    hidden = lm.model(**batch).last_hidden_state  # (B, T, 384)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                vec = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(vec.float(), dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)
    return encode


def cached_embeddings(texts: list[str], encode: Encoder, folder: Path | None, key: str) -> np.ndarray:
    """The texts' embeddings, from folder/KEY.npy when it holds them; written to a temporary file
    and renamed, so a crash never leaves a half-written cache that a later start would trust."""
    digest = hashlib.sha256("\x00".join([key, *texts]).encode()).hexdigest()[:24]
    path = folder / f"steps-{digest}.npy" if folder else None
    if path is not None and path.is_file():
        try:
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached
        except (OSError, ValueError) as e:
            log.warning("ignoring unreadable embedding cache %s: %s", path, e)
    vectors = encode(texts).astype(np.float32)
    if path is not None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, vectors)
        os.replace(tmp, path)
    return vectors


def fuse(bm25: np.ndarray, dense: np.ndarray) -> np.ndarray:
    """One score per step in [0, 1]: BM25 squashed to [0, 1) (its raw scale depends on the query),
    mixed with the cosine. Either alone misses: BM25 the paraphrases, dense the rare exact terms."""
    return (1 - DENSE_WEIGHT) * bm25 / (bm25 + BM25_SCALE) + DENSE_WEIGHT * np.clip(dense, 0, 1)


class LessonSearch:
    """Hybrid retrieval over the curriculum's steps. `encode` None means BM25 only."""

    def __init__(self, cur: "Curriculum", encode: Encoder | None = None, cache: Path | None = None,
                 model_key: str = ENCODER_MODEL):
        self.cur = cur
        self.docs = curriculum_docs(cur)
        self.encode = encode
        self.known: set[str] = set()  # every BM25 word the lessons use (for the "covered" judgement)
        self.vocabulary: list[str] = []  # every plain word, for typo correction
        self.bm25 = bm25s.BM25()
        self.titles = bm25s.BM25()
        order = {l.id: i for i, l in enumerate(cur.lessons)}
        self.lesson_row = np.array([order[d.lesson] for d in self.docs], dtype=int)
        if self.docs:
            corpus = words([d.indexed for d in self.docs])
            self.known = {w for doc in corpus for w in doc}
            self.vocabulary = sorted({w for d in self.docs for w in re.findall(r"[a-z][a-z'-]{3,}", d.indexed.lower())})
            self.bm25.index(corpus, show_progress=False)
            self.titles.index(words([f"{l.title} {l.id.replace('-', ' ')}" for l in cur.lessons]),
                              show_progress=False)
        # (quiz row, row of the text step it quizzes on): the nearest text step before it
        self.quizzes = [(i, j) for i, d in enumerate(self.docs) if d.kind == "quiz"
                        for j in [next((j for j in range(i - 1, -1, -1) if self.docs[j].lesson == d.lesson
                                        and self.docs[j].kind == "text"), None)] if j is not None]
        self.chunk_of: np.ndarray = np.zeros(0, dtype=int)  # chunk row -> doc row
        self.vectors: np.ndarray | None = None
        self.everyday: np.ndarray | None = None
        self.heads: np.ndarray | None = None  # one row per lesson: what the whole lesson is about
        if encode is not None and self.docs:
            texts, owner = [], []
            for i, d in enumerate(self.docs):
                for c in chunks(d):
                    texts.append(c)
                    owner.append(i)
            self.chunk_of = np.array(owner, dtype=int)
            self.vectors = cached_embeddings(texts, encode, cache, model_key)
            self.everyday = cached_embeddings(list(EVERYDAY), encode, cache, model_key)
            self.heads = cached_embeddings([f"{l.title}. {l.summary}" for l in cur.lessons], encode, cache, model_key)

    def _bm25(self, question: str) -> np.ndarray:
        query = words([question])[0]
        if not query or not self.docs:
            return np.zeros(len(self.docs))
        return self.bm25.get_scores(query) + TITLE_WEIGHT * self.titles.get_scores(query)[self.lesson_row]

    def _dense(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(questions, steps): each step's best sentence cosine, and its lesson's cosine; and per
        question, how much nearer it is to an everyday topic than to its nearest step. One encoder
        batch for all questions."""
        zeros = np.zeros((len(queries), len(self.docs)))
        if self.vectors is None:
            return zeros, zeros, np.full(len(queries), -1.0)
        asked = self.encode([q if q.strip() else "?" for q in queries])
        sims = asked @ self.vectors.T  # (Q, chunks)
        best = np.full((len(queries), len(self.docs)), -1.0)
        for row, sim in zip(best, sims):
            np.maximum.at(row, self.chunk_of, sim)
        heads = (asked @ self.heads.T)[:, self.lesson_row]  # (Q, steps)
        return best, heads, (asked @ self.everyday.T).max(1) - best.max(1)

    def rank_many(self, questions: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """The k best steps for each question, best first."""
        for q in questions:  # the MiniLM tokenizer raises a bare TypeError on one; say what is wrong instead
            valid_unicode(q, "Your question")
        if not self.docs or not questions:
            return [[] for _ in questions]
        queries = [expand(q, self.vocabulary) for q in questions]
        dense, heads, everyday = self._dense(queries)
        out = []
        for query, dense_row, head_row, off in zip(queries, dense, heads, everyday):
            bm25 = self._bm25(query)
            fused = fuse(bm25, dense_row) if self.vectors is not None else bm25 / (bm25 + BM25_SCALE)
            fused = self._explanations_first(self._with_lesson(fused + HEAD_WEIGHT * np.clip(head_row, 0, 1)))
            top = np.argsort(-fused, kind="stable")[:k]
            out.append([Hit(self.docs[i], float(fused[i]), float(bm25[i]), float(dense_row[i]), float(off))
                        for i in top])
        return out

    def _with_lesson(self, fused: np.ndarray) -> np.ndarray:
        """Each step's score plus a share of its lesson's next best step: a lesson that answers
        in two places is the likelier home of the question than one lucky sentence elsewhere."""
        if not LESSON_WEIGHT:
            return fused
        second = np.zeros(len(self.cur.lessons))
        for row in range(len(second)):
            mine = np.sort(fused[self.lesson_row == row])
            second[row] = mine[-2] if len(mine) > 1 else 0.0
        return fused + LESSON_WEIGHT * second[self.lesson_row]

    def _explanations_first(self, fused: np.ndarray) -> np.ndarray:
        """A quiz does not outrank the text step it quizzes on (the one before it in its lesson)
        when that step answers nearly as well: the explanation takes the quiz's score and the
        quiz comes right after it. A question that is the quiz's own keeps the quiz first."""
        out = fused.copy()
        for quiz, text in self.quizzes:
            if out[text] < out[quiz] <= out[text] + QUIZ_MARGIN:
                out[text], out[quiz] = out[quiz], out[quiz] - 1e-6
        return out

    def rank(self, question: str, k: int = 5) -> list[Hit]:
        return self.rank_many([question], k)[0]

    def lessons_for(self, question: str, k: int = 3, hits: list[Hit] | None = None) -> list[str]:
        """The best k distinct lesson ids (what the accuracy figures measure)."""
        seen: list[str] = []
        for hit in hits if hits is not None else self.rank(question, k=40):
            if hit.doc.lesson not in seen:
                seen.append(hit.doc.lesson)
        return seen[:k]

    def coverage(self, question: str) -> float:
        """The share of the question's content words that occur anywhere in the lessons."""
        query = words([question])[0]
        return sum(w in self.known for w in query) / len(query) if query else 0.0

    def covered(self, hits: list[Hit], question: str) -> bool:
        """Whether the best hit really answers: off-topic questions share few words with the lessons
        and sit far from every step in the encoder's space."""
        if not hits:
            return False
        best, share = hits[0], self.coverage(question)
        if self.vectors is None:
            return best.bm25 >= 1.0 and share > 0.5
        if best.everyday > 0:  # nearer to the weather, a recipe or a poem than to any step
            return False
        return best.score >= SURE or (best.score >= MIN_FUSED and share > 0.5)

    def answer(self, question: str) -> "Reply":
        """The retrieval answer: the whole step, or an honest "not covered" (tutor/lessons/answers.py)."""
        from .answers import answer

        return answer(self, question)[0]


def passages(cur: "Curriculum") -> list[StepDoc]:
    """Every answerable step of the curriculum (what is indexed)."""
    return curriculum_docs(cur)

"""What every explainer shares: the lesson passages it is given, the prompt it sends, reading
citations back out of an answer, and the reply the learner sees (the answer with its label,
sources and grounding passage, or one line on what failed and then the retrieval answer).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from .tools import Reply

PASSAGE_CHARS = 1500  # a step longer than this is cut for the prompt (the reply quotes it whole)
DATA_CHARS = 1500  # one tool result's `data`, as JSON, in the prompt
RECENT_RESULTS = 3  # the learner's latest tool results the model sees


@dataclass(frozen=True)
class Passage:
    """One lesson step that retrieval found for a question."""
    lesson_id: str
    lesson_title: str
    step: int  # 1-based, as `lesson ID` and the outline count steps
    text: str  # the whole step, markdown
    commands: tuple[str, ...] = field(default=())  # tool commands that show it
    score: float = 0.0

    @property
    def tag(self) -> str:
        """How the model cites it: [lesson-id step N]."""
        return f"[{self.lesson_id} step {self.step}]"


# A command the explainer wants run, e.g. "/tokenize gpt2 hello": runs as if the learner typed it.
RunCommand = Callable[[str], "Iterator[Reply]"]


class ExplainerFailed(Exception):
    """Why no explanation came: `kind` (timeout, unreachable, slow, rate_limit, malformed, refused,
    server_error) and a line for the learner that says what happened and what fixes it."""

    def __init__(self, kind: str, line: str):
        super().__init__(line)
        self.kind, self.line = kind, line


# ---- the prompt ---------------------------------------------------------------------------------

SYSTEM = """You are the tutor of a hands-on course on how large language models work.
Answer the learner's question in your own words, in one to three short paragraphs, for a beginner.
Use only the lesson passages below and the learner's recent tool results; do not add facts they do not contain.
Cite each passage you use by its tag, exactly as written, e.g. {example}.
If the passages do not answer the question, say so in one sentence."""

TOOLS_NOTE = """You may call the tutor's tools to show the learner something (for example to tokenize a word they asked about):
each call runs in the learner's chat as if they had typed it, and you get its result back."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def prompt_messages(question: str, passages: list[Passage], recent: list[tuple[str, dict]],
                    tools: bool = False) -> list[dict[str, Any]]:
    """The chat messages an explainer sends: instructions with the passages and tool results,
    then the question. Every part is bounded, so a long lesson or a big `data` cannot flood it."""
    lines = [SYSTEM.format(example=passages[0].tag if passages else "[lesson-id step 1]")]
    if tools:
        lines += ["", TOOLS_NOTE]
    lines += ["", "Lesson passages:"]
    for p in passages:
        lines += ["", f"{p.tag} (lesson: {p.lesson_title})", _cut(p.text.strip(), PASSAGE_CHARS)]
    if recent:
        lines += ["", "The learner's recent tool results, newest last:"]
        for command, data in recent[-RECENT_RESULTS:]:
            lines.append(f"{command} -> {data_json(data)}")
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": question}]


def data_json(data: Any, limit: int = DATA_CHARS) -> str:
    """A tool's `data` as compact JSON for the model, cut at `limit` characters."""
    text = json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + " …(cut)"


# ---- the reply ----------------------------------------------------------------------------------

_CITE = re.compile(r"\[\s*(?:lesson\s+)?([\w.\-]+)[\s,]+step\s+(\d+)\s*\]", re.IGNORECASE)


def citations(answer: str, passages: list[Passage]) -> tuple[list[Passage], list[str]]:
    """The passages the answer cites, in order of first citation, and the tags it cites that
    were not among its passages: citations("as [bpe step 2] says", ps) -> ([bpe step 2], [])."""
    known = {(p.lesson_id.lower(), p.step): p for p in passages}
    cited: list[Passage] = []
    unknown: list[str] = []
    for m in _CITE.finditer(answer):
        p = known.get((m.group(1).lower(), int(m.group(2))))
        if p is None:
            if m.group(0) not in unknown:
                unknown.append(m.group(0))
        elif p not in cited:
            cited.append(p)
    return cited, unknown


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.strip().splitlines())


def answer_reply(answer: str, passages: list[Passage], label: str, fallback: "Reply",
                 model: dict[str, Any], tool_calls: list[dict] | None = None) -> "Reply":
    """The final reply: the model's answer, its label, the lessons it cited, and the grounding
    passage quoted whole under it. `data` keeps the retrieval reply's facts (covered, lesson,
    step) and adds what the model did."""
    cited, unknown = citations(answer, passages)
    grounding = cited[0] if cited else passages[0]
    parts = [answer.strip(), "", f"*— {label}. The lesson passage below is the source; check the answer against it.*",
             ""]
    if cited:
        parts.append("**Sources:** " + " · ".join(f"{p.tag} {p.lesson_title}" for p in cited))
    else:
        parts.append("**Sources:** the model cited none of its passages; it was given "
                     + " · ".join(p.tag for p in passages) + ".")
    if unknown:
        parts.append(f"(It also cited {', '.join(unknown)}, which it was not given: ignore those.)")
    parts += ["", f"From **{grounding.lesson_title}** (step {grounding.step}):", "", _quote(grounding.text)]
    calls = tool_calls or []
    if calls:
        parts += ["", "Ran for this answer: " + ", ".join(f"`{c['command']}`" for c in calls)]
    data = {**fallback.data, "explainer": model, "answer": answer.strip(),
            "cited": [{"lesson": p.lesson_id, "step": p.step} for p in cited],
            "cited_unknown": unknown, "grounding": {"lesson": grounding.lesson_id, "step": grounding.step},
            "tool_calls": calls}
    buttons = list(dict.fromkeys([*(c["command"] for c in calls), *fallback.buttons]))
    return replace(fallback, text="\n".join(parts), data=data, buttons=buttons, error=False, done=True)


def partial_reply(answer: str, label: str) -> "Reply":
    """What the chat shows while the answer streams."""
    from .tools import Reply

    return Reply(text=f"*{label}…*\n\n{answer}▍", data={"streaming": True}, done=False)


def fallback_reply(failure: ExplainerFailed, fallback: "Reply", model: dict[str, Any]) -> "Reply":
    """The retrieval answer, after one line saying why the model's explanation did not come."""
    line = f"⚠️ {failure.line} Here is the answer from the lessons instead."
    data = {**fallback.data, "explainer": model, "explainer_error": {"kind": failure.kind, "message": failure.line}}
    return replace(fallback, text=f"{line}\n\n{fallback.text}", data=data, done=True)

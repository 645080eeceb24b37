"""Follow-ups: short messages that only make sense after the last turn, resolved from the
session's memory of it (the last tool calls, the last answer).

    after /tokenize gpt2 unhappiness:   "now with bert", "and o200k?"  -> the same call, another tokenizer
                                        "compare them"                 -> /compare the tokenizers used
    after /attention ... --layer 0:     "what about layer 3?", "head 5 only" -> the same call, new numbers
    after an answer:                    "why?", "show me", "an example?", "say it more simply"
    any time:                           "again" reruns the last command
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import commands, intents
from .tools import Reply

if TYPE_CHECKING:
    from .context import Session

LEAD = r"^(?:now|and|then|ok|okay|also|but|so|same|just|try|what about|how about|with|in|using|for|on|the|only|\s|,)*"
TAIL = r"(?:instead|too|please|then|only|again|\s|[?.!,])*$"
AGAIN = re.compile(r"^(?:again|do it again|run it again|once more|same again|repeat that|one more time)[.!]*$", re.I)
COMPARE = re.compile(r"^compare (?:them|both|those|these|the two|all of them)[.!?]*$", re.I)
WHY = re.compile(r"^(?:but |and |so )?(?:why|how come|why is that|why so)[?.!]*$", re.I)
SHOW = re.compile(r"^(?:show me|show it|show me how|demo|try it|(?:an |give me an |show me an )?example|for example"
                  r"|can you show me)[?.!]*$", re.I)
SIMPLER = re.compile(r"^(?:say it more simply|more simply|simpler|explain (?:it |that )?(?:more )?simply|in simple "
                     r"(?:terms|words)|eli5|i don'?t (?:get|understand)(?: it| that)?|what does that mean)[?.!]*$", re.I)


@dataclass
class Memory:
    """What the session remembers of the conversation (kept in the session's state)."""

    calls: list[tuple[str, dict]] = field(default_factory=list)  # (command, final data), newest last
    answer: tuple[str, str, int] | None = None  # (question, lesson, step) of the last free-question answer
    last: str = ""  # "call" or "answer": what the latest turn was

    def note_call(self, line: str, data: dict) -> None:
        self.calls = [*self.calls[-7:], (line, data)]
        self.last = "call"

    def note_answer(self, question: str, lesson: str, step: int) -> None:
        self.answer, self.last = (question, lesson, step), "answer"


def memory_of(session: "Session") -> Memory:
    return session.state.setdefault("tutor.conversation", {}).setdefault("memory", Memory())


@dataclass(frozen=True)
class Again:
    line: str  # run this command, shown with its line as a plain request's is


def resolve(text: str, session: "Session") -> Again | list[Reply] | None:
    """What a follow-up means, or None when the message is not one."""
    mem, tutor = memory_of(session), session.tutor
    if AGAIN.match(text.strip()):
        return Again(mem.calls[-1][0]) if mem.calls else None
    if mem.last == "answer" and mem.answer:
        return _after_answer(text.strip(), session, mem)
    if not mem.calls:
        return None
    if COMPARE.match(text.strip()):
        return _compare(mem, tutor)
    call = _parse(mem.calls[-1][0], tutor)
    if call is None:
        return None
    names = intents.Names.build(tutor.registry, tutor.available_models())
    changed = _swap_names(text, call, names) or _new_numbers(text, call)
    return Again(intents.command_line(call.tool, {**call.args, **changed})) if changed else None


def _parse(line: str, tutor: Any) -> commands.ToolCall | None:
    try:
        return commands.parse(line, tutor.registry.tools, tutor.registry, tutor.settings.max_input_chars)
    except Exception:  # noqa: BLE001 - a remembered line the registry no longer accepts
        return None


def _rest(text: str) -> str:
    return re.sub(TAIL, "", re.sub(LEAD, "", text.strip().lower()))


def _swap_names(text: str, call: commands.ToolCall, names: intents.Names) -> dict:
    """"now with bert" -> the remembered call's model or tokenizer replaced."""
    rest = _rest(text)
    surfaces = [w for w in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", rest) if w]
    if not surfaces:
        return {}
    for p in call.tool.params:
        kind = intents.param_kind(p)
        resolved = [names.resolve(s, kind) for s in surfaces] if kind else []
        if resolved and all(len(r) == 1 for r in resolved):
            picked = [r[0] for r in resolved]
            return {p.name: picked if p.type is list else picked[0]}
    return {}


def _new_numbers(text: str, call: commands.ToolCall) -> dict:
    """"what about layer 3?", "head 5 only" -> the remembered call with those numbers."""
    msg = intents.Message.read(_rest(text))
    got = intents.Fill()
    intents.take_numbers([n for p in call.tool.params if p.type in (int, float) for n in intents.numbers_in(p, msg)], got)
    left = msg.masked
    for a, b in sorted(got.spans, reverse=True):
        left = left[:a] + left[b:]
    return got.args if got.args and not re.sub(r"[\s,]|\band\b", "", left) else {}


def _compare(mem: Memory, tutor: Any) -> Again | None:
    """"compare them": the tokenizers of the recent calls on the same text, side by side."""
    used, text = [], None
    for line, _ in reversed(mem.calls):
        call = _parse(line, tutor)
        if call is None:
            continue
        names = [v for p in call.tool.params if intents.param_kind(p) == "tokenizers"
                 for v in ([call.args.get(p.name)] if p.type is not list else call.args.get(p.name) or [])]
        rest = next((call.args.get(p.name) for p in call.tool.params if p.rest), None)
        if not names or (text is not None and rest != text):
            break
        text = rest
        used += [n for n in names if n and n not in used]
    if len(used) < 2 or not text:
        return None
    found = intents.interpret(f"compare {' and '.join(reversed(used))} on \"{text}\"", tutor.registry.tools,
                              intents.Names.build(tutor.registry))
    return Again(found.line) if isinstance(found, intents.Run) else None


def _after_answer(text: str, session: "Session", mem: Memory) -> Again | list[Reply] | None:
    from .lessons.answers import covered_reply

    question, lesson_id, step = mem.answer
    search, cur = session.tutor.lesson_search, session.tutor.curriculum
    shown = next((d for d in search.docs if d.lesson == lesson_id and d.step == step), None)
    if shown is None:
        return None
    if WHY.match(text):
        hits = [h for h in search.rank(f"why {question}", k=len(search.docs))
                if h.doc.lesson == lesson_id and h.doc.step != step]
        # a reason is explained, not quizzed: the lesson's text steps first, a quiz only if it has none
        hits = [h for h in hits if h.doc.kind == "text"] or hits
        if not hits:
            return None
        reply = covered_reply(cur, hits, lead="The reasoning, from the same lesson:")
        mem.note_answer(question, hits[0].doc.lesson, hits[0].doc.step)
        return [reply]
    if SHOW.match(text):
        lesson = cur.get(lesson_id)
        line = (shown.commands or tuple(lesson.commands))[:1]
        return Again(line[0]) if line else None
    if SIMPLER.match(text):
        return [_simpler(cur, shown)]
    return None


def _simpler(cur: Any, doc: Any) -> Reply:
    lesson = cur.get(doc.lesson)
    first = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", doc.shown).strip())[:2]
    return Reply(text=f"In one line: **{lesson.summary or lesson.title}**\n\n{' '.join(first)}\n\n*These are the "
                      "lesson's own words, shortened; a course that configures a language model (TUTOR_LLM_URL) "
                      "gets them rephrased.*",
                 buttons=[f"lesson {doc.lesson} {doc.step}"],
                 data={"covered": True, "lesson": doc.lesson, "step": doc.step, "simpler": True})

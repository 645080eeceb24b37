"""The turn pipeline: a message and a session in, replies out. Plain Python, no Gradio.

Every message is tried in this order; the first step that answers wins:

    1. "/name args", "/help [NAME]"   the tool's reply (calls.run_command), remembered
    2. lesson navigation, quizzes     lessons/tutoring.chat_turn ("next", "lesson arch-mlp 3", "B")
    3. follow-ups                     followups.resolve, from the session's memory ("now with bert", "why?", "again")
    4. plain-language requests        intents.interpret -> the tool's command, shown above its output,
                                      or one short question with buttons when it is ambiguous
    5. plugins' turn handlers         register_turn_handlers (e.g. a course's FAQ)
    6. free questions                 lessons/search + lessons/answers: the step that answers it, or
                                      "not covered"; with an explainer configured (tutor/explainer.py)
                                      the explainer writes the answer from those steps

This module imports what it dispatches to; nothing below it imports it back.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Callable, Iterator

from . import followups, intents
from .calls import guarded, run_command
from .context import Session
from .lessons.answers import answer as retrieval_answer
from .lessons.answers import passages
from .lessons.tutoring import chat_turn
from .tools import Reply

TurnHandler = Callable[[str, Session], "Iterator[Reply] | list[Reply] | None"]


def respond(message: str, session: Session, cancel: threading.Event | None = None) -> Iterator[Reply]:
    """Every reply to one message. Never raises: problems become readable error replies."""
    yield from guarded(_dispatch(message or "", session, cancel), message or "")


def turn_handlers(session: Session, cancel: threading.Event | None = None) -> list[TurnHandler]:
    """Steps 2 to 6 above, in order, for one turn."""
    run = _runner(session, cancel)

    def follow_up(text: str, s: Session):
        found = followups.resolve(text, s)
        if isinstance(found, followups.Again):
            return run(found.line, True)
        if found is None and text.strip().lower().rstrip(".!") == "again":
            return chat_turn("repeat", s)  # nothing to rerun: "again" shows the lesson step again
        return found

    def request(text: str, s: Session):
        found = intents.interpret(text, s.tutor.registry.tools,
                                  intents.Names.build(s.tutor.registry, s.tutor.available_models()))
        if isinstance(found, intents.Ask):
            return [Reply(text=found.question + "\n\n" + " · ".join(f"`{b}`" for b in found.buttons),
                          buttons=list(found.buttons), data={"clarify": True, "choices": list(found.buttons)})]
        return run(found.line, True) if found else None

    plugins = [handler for _, handler in session.tutor.registry.turn_handlers]
    return [chat_turn, follow_up, request, *plugins, lambda text, s: _question(text, s, run)]


def _dispatch(message: str, session: Session, cancel: threading.Event | None) -> Iterator[Reply]:
    text = message.strip()
    if not text:
        yield Reply(text="Type a question, a lesson command such as `start`, or a tool such as `/help`.")
        return
    if text.startswith("/"):
        yield from _runner(session, cancel)(message.lstrip(), False)
        return
    for handler in turn_handlers(session, cancel):
        replies = handler(text, session)
        if replies is not None:
            yield from replies
            return
    yield Reply(text="I answer tool commands; type `/help` to see them all, e.g. "
                     "`/count The cat sat on the mat`.", buttons=["/help"])


def _runner(session: Session, cancel: threading.Event | None) -> Callable[[str, bool], Iterator[Reply]]:
    """Runs a slash command exactly as if it were typed and remembers it. `shown`: the learner did
    not type it (plain words, a follow-up), so the command goes above the output and in `data`."""
    def run(line: str, shown: bool) -> Iterator[Reply]:
        last = None
        for reply in run_command(line, session, cancel):
            if shown:
                reply = replace(reply, text=f"▶ `{line}`\n\n{reply.text}", data={**reply.data, "command": line},
                                buttons=[line, *(b for b in reply.buttons if b != line)])
            last = reply
            yield reply
        if last is not None and not last.error:
            followups.memory_of(session).note_call(line, last.data)
    return run


def _question(text: str, session: Session, run: Callable[[str, bool], Iterator[Reply]]) -> Iterator[Reply]:
    """A free question: the retrieval answer, or the configured explainer's, grounded in it."""
    tutor = session.tutor
    reply, hits = retrieval_answer(tutor.lesson_search, text)
    memory = followups.memory_of(session)
    if reply.data.get("covered"):
        memory.note_answer(text, reply.data["lesson"], reply.data["step"])
    writer = tutor.explainer  # explainer.explainer_for(settings, tutor), made once per process
    if writer is None or not reply.data.get("covered"):  # off-topic stays declined, whoever writes
        return iter([reply])
    recent = [(line, data) for line, data in memory.calls[-3:]]
    return writer.explain(text, passages(tutor.curriculum, hits), recent, reply, lambda line: run(line, True))


def final(message: str, session: Session) -> Reply:
    """The last reply of a turn (what the terminal and lesson checks use)."""
    last = Reply()
    for last in respond(message, session):
        pass
    return last

"""The explainer seam: who writes the answer to a free question.

Retrieval finds the lesson passages that answer a question; an explainer turns them into an
answer. The embedded default is no explainer at all (the retrieval answer is shown as it is).
A course that configures an OpenAI-compatible model server gets one that writes the answer in its
own words from the passages and the learner's recent tool data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

if TYPE_CHECKING:
    from .tools import Reply


@dataclass(frozen=True)
class Passage:
    """One lesson step that retrieval found for a question."""
    lesson_id: str
    lesson_title: str
    step: int  # 1-based, as `lesson ID` and the outline count steps
    text: str  # the whole step, markdown
    commands: tuple[str, ...] = field(default=())  # tool commands that show it
    score: float = 0.0


# A command the explainer wants run, e.g. "/tokenize gpt2 hello": runs as if the learner typed it.
RunCommand = Callable[[str], "Iterator[Reply]"]


class Explainer(Protocol):
    label: str  # shown with every answer, e.g. "written by Qwen2.5-7B-Instruct (vLLM at http://...)"

    def explain(self, question: str, passages: list[Passage], recent: list[tuple[str, dict]],
                fallback: "Reply", run_command: RunCommand) -> "Iterator[Reply]":
        """Stream the answer (replies with done=False, the final one last); `recent` is the learner's
        latest (command, data) pairs, newest last. On any failure: one clear line, then `fallback`."""
        ...


def explainer_for(settings) -> Explainer | None:
    """The configured explainer, or None: the retrieval answer is then the answer."""
    return None

"""The explainer seam: who writes the answer to a free question.

Retrieval finds the lesson passages that answer a question; an explainer turns them into an
answer. The embedded default is no explainer at all (the retrieval answer is shown as it is).
A course that configures an OpenAI-compatible model server (TUTOR_LLM_URL) gets one that writes
the answer in its own words from the passages and the learner's recent tool data, cites them as
[lesson-id step N], and may call the tutor's tools (tutor/explain_server.py). TUTOR_LLM=local
uses SmolLM2-135M through the model cache, labelled as the small, often wrong model it is
(tutor/explain_local.py). What they share (the prompt, citations, the reply) is in
tutor/explain_prompt.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Protocol

from .explain_prompt import ExplainerFailed, Passage, RunCommand

if TYPE_CHECKING:
    from .tools import Reply

__all__ = ["Explainer", "ExplainerFailed", "Passage", "RunCommand", "explainer_for"]


class Explainer(Protocol):
    label: str  # shown with every answer, e.g. "written by Qwen2.5-7B-Instruct (vLLM at http://...)"

    def explain(self, question: str, passages: list[Passage], recent: list[tuple[str, dict]],
                fallback: "Reply", run_command: RunCommand) -> "Iterator[Reply]":
        """Stream the answer (replies with done=False, the final one last); `recent` is the learner's
        latest (command, data) pairs, newest last. On any failure: one clear line, then `fallback`.
        With no passages (the lessons do not cover the question) the answer is `fallback` as it is:
        an explanation is only ever written from the lessons."""
        ...


# ---- configuration ------------------------------------------------------------------------------

def explainer_for(settings, tutor=None) -> Explainer | None:
    """The configured explainer, or None: the retrieval answer is then the answer.

    TUTOR_LLM=none (the default without TUTOR_LLM_URL) gives None; a URL (or TUTOR_LLM=server)
    gives the OpenAI-compatible server's explainer, offered the tutor's tools when `tutor` is
    given; TUTOR_LLM=local needs `tutor` (its model cache). Nothing here touches the network."""
    mode = settings.llm or ("server" if settings.llm_url else "none")
    if mode == "none":
        return None
    if mode == "local":
        if tutor is None:
            raise ValueError("TUTOR_LLM=local needs the Tutor (its model cache): explainer_for(settings, tutor)")
        from .explain_local import LocalExplainer
        return LocalExplainer(tutor, settings.llm_timeout)
    if not settings.llm_url:
        raise ValueError("TUTOR_LLM=server needs TUTOR_LLM_URL, e.g. http://127.0.0.1:8000/v1")
    from .explain_server import ServerExplainer
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    tools = list(tutor.registry.tools.values()) if tutor is not None else []
    return ServerExplainer(settings.llm_url, settings.llm_model, key, settings.llm_timeout, tools)

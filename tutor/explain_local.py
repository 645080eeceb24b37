"""TUTOR_LLM=local: SmolLM2-135M-Instruct writes the answer, here, through the model cache and
the local batching decoder (tutor/generation.py). A course must choose this: a 135M model
writes fluent English but is often wrong, and every answer says so. It is given fewer passages
than a server model and no tools (it cannot call them reliably).
"""

from __future__ import annotations

import time
from typing import Iterator

from .explain_prompt import (ExplainerFailed, Passage, RunCommand, answer_reply, fallback_reply, partial_reply,
                             prompt_messages)
from .tools import Reply

MODEL_ID = "smollm2-135m"
MAX_NEW_TOKENS = 200
PASSAGES = 2  # a 135M model loses the thread with more
LABEL = ("written by SmolLM2-135M-Instruct, running here: a 135M model that is often wrong")


class LocalExplainer:
    label = LABEL

    def __init__(self, tutor, timeout: float, model_id: str = MODEL_ID, max_new_tokens: int = MAX_NEW_TOKENS):
        self.tutor, self.timeout, self.model_id = tutor, float(timeout), model_id
        self.max_new_tokens = max_new_tokens

    def explain(self, question: str, passages: list[Passage], recent: list[tuple[str, dict]],
                fallback: Reply, run_command: RunCommand) -> Iterator[Reply]:
        if not passages:
            yield fallback
            return
        passages = passages[:PASSAGES]
        info = {"model": "SmolLM2-135M-Instruct", "server": "local"}
        try:
            answer = yield from self._generate(prompt_messages(question, passages, recent[-1:]))
        except ExplainerFailed as failure:
            yield fallback_reply(failure, fallback, info)
            return
        yield answer_reply(answer, passages, self.label, fallback, info)

    def _generate(self, messages: list[dict]) -> Iterator[Reply]:
        from .generation import Sampling, decoder_for, stop_ids

        deadline = time.monotonic() + self.timeout
        try:
            with self.tutor.model(self.model_id) as lm:  # loads it once; the decoder reuses the cache
                tok = lm.tokenizer
                ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
                ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
                stops = stop_ids(lm)
        except Exception as e:  # a model that cannot load here must not cost the learner the answer
            raise ExplainerFailed("unreachable", f"The local model {self.model_id} could not load "
                                  f"({type(e).__name__}: {str(e)[:160]}).") from None
        stream = decoder_for(self.tutor, self.model_id).submit(
            ids, self.max_new_tokens, Sampling(greedy=True, repetition_penalty=1.2), stops)
        out: list[int] = []
        try:
            for step in stream.steps():
                out.append(step.id)
                if time.monotonic() > deadline:
                    raise ExplainerFailed("slow", f"The local model was too slow: the answer was not finished "
                                          f"after {self.timeout:g} s (TUTOR_LLM_TIMEOUT).")
                yield partial_reply(tok.decode(out, skip_special_tokens=True), self.label)
        finally:
            stream.cancel()  # a reader that went away (Stop, the deadline) frees its row in the batch
        answer = tok.decode(out, skip_special_tokens=True).strip()
        if not answer:
            raise ExplainerFailed("malformed", "The local model wrote an empty answer.")
        return answer

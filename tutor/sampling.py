"""Sampling controls: how the next token is chosen, checked as a learner types them, and `choose`,
one step of it exactly as transformers' `model.generate` does.

Sampling uses transformers' own logits processors, in the order `model.generate` applies them
(repetition penalty, then temperature, top-k, top-p), so what a learner sees is what generate does.
Each request samples with its own `torch.Generator` (tutor/generation.py makes one per request),
so a seed reproduces a run no matter who else is generating at the same moment.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .tools import ToolError

TOP = 5  # alternatives kept per step

# ---- sampling controls ------------------------------------------------------------------------

@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen from the model's logits.

    greedy: always the most likely token (argmax); otherwise sample from softmax(processed logits).
    temperature/top_k/top_p only apply when sampling; repetition_penalty applies in both modes,
    as in `model.generate`.
    """

    greedy: bool = True
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None

    def processors(self):
        """transformers' LogitsProcessorList for these settings (empty for plain greedy)."""
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                  TopKLogitsWarper, TopPLogitsWarper)

        out = LogitsProcessorList()
        if self.repetition_penalty != 1.0:
            out.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if not self.greedy:
            if self.temperature != 1.0:
                out.append(TemperatureLogitsWarper(self.temperature))
            if self.top_k:
                out.append(TopKLogitsWarper(self.top_k))
            if self.top_p is not None and self.top_p < 1.0:
                out.append(TopPLogitsWarper(self.top_p))
        return out

    def describe(self) -> str:
        parts = ["greedy (always the most likely token)"] if self.greedy else [
            f"sampling, temperature {self.temperature:g}"
            + (f", top-k {self.top_k}" if self.top_k else "")
            + (f", top-p {self.top_p:g}" if self.top_p is not None and self.top_p < 1 else "")
            + f", seed {self.seed}"]
        if self.repetition_penalty != 1.0:
            parts.append(f"repetition penalty {self.repetition_penalty:g}")
        return ", ".join(parts)


MIN_TEMPERATURE = 1e-3  # below this, logits / T overflow float32 for typical logit gaps
MIN_REPETITION_PENALTY = 1e-3  # the penalty divides a repeated token's positive logit: the same overflow


def sampling_from_options(greedy: bool = False, temperature: float | None = None, top_k: int | None = None,
                          top_p: float | None = None, repetition_penalty: float | None = None,
                          seed: int | None = None, default_greedy: bool = False) -> tuple[Sampling, list[str]]:
    """Check what a learner typed and turn it into Sampling, plus notes to show them.

    Without --greedy the next token is drawn from the distribution (temperature 1, nothing cut:
    the model's own probabilities) unless `default_greedy` and no sampling control was given.
    Temperature 0 is the limit "always the most likely token", i.e. greedy: we say so and run
    greedy. Everything else out of range is refused with what each control means.
    """
    notes: list[str] = []
    if temperature is not None and temperature < 0:
        raise ToolError(f"--temperature must be 0 or more, but got {temperature:g}. It divides the logits: "
                        "below 1 sharpens the distribution, above 1 flattens it, and 0 means greedy "
                        "(always the most likely token). Try --temperature 0.7.")
    if temperature is not None and 0 < temperature < MIN_TEMPERATURE:  # logits / T would overflow to inf
        raise ToolError(f"--temperature {temperature:g} is so close to 0 that dividing the logits by it "
                        f"overflows. Use 0 for greedy (always the most likely token), or at least {MIN_TEMPERATURE:g}.")
    if top_k is not None and top_k < 1:
        raise ToolError(f"--top-k must be a whole number of at least 1 (keep the K most likely tokens), "
                        f"but got {top_k}. --top-k 1 is greedy; try --top-k 50.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ToolError(f"--top-p must be above 0 and at most 1 (keep the most likely tokens until their "
                        f"probabilities add up to P), but got {top_p:g}. 1 keeps everything; try --top-p 0.9.")
    if repetition_penalty is not None and repetition_penalty <= 0:
        raise ToolError(f"--repetition-penalty must be above 0 (1 means no penalty; above 1 makes tokens "
                        f"already in the text less likely), but got {repetition_penalty:g}. Try 1.2.")
    if repetition_penalty is not None and repetition_penalty < MIN_REPETITION_PENALTY:
        raise ToolError(f"--repetition-penalty {repetition_penalty:g} is so close to 0 that dividing the logits "
                        f"by it overflows. Use at least {MIN_REPETITION_PENALTY:g} (1 means no penalty; above 1 "
                        "makes tokens already in the text less likely); try 1.2.")
    controls = any(v is not None for v in (temperature, top_k, top_p))
    if greedy and controls:
        raise ToolError("--greedy always takes the most likely token, so --temperature, --top-k and --top-p "
                        "would have no effect. Use --greedy alone, or drop it to sample.")
    if temperature == 0:
        notes.append("Temperature 0 means always taking the most likely token: that is greedy decoding, "
                     "so this ran greedy (top-k and top-p then change nothing).")
        greedy = True
    penalty = 1.0 if repetition_penalty is None else float(repetition_penalty)
    if greedy or (default_greedy and not controls and seed is None):
        return Sampling(greedy=True, repetition_penalty=penalty), notes
    return Sampling(greedy=False, temperature=1.0 if temperature is None else float(temperature), top_k=top_k,
                    top_p=top_p, repetition_penalty=penalty,
                    seed=seed if seed is not None else random.randrange(2**31)), notes


@dataclass
class Step:
    """One generated token: its id, its probability in the distribution it was drawn from (`p`),
    its probability in the model's own softmax (`p_model`), and the top alternatives [(id, p)]."""

    id: int
    p: float
    p_model: float
    top: list[tuple[int, float]]


def choose(logits, ids, sampling: Sampling, processors, generator) -> Step:
    """Pick the next token from one row of logits (1, vocab), exactly as generate does.

    `ids` (1, length) is the text so far (the repetition penalty reads it). generate computes
    the last logits in float32, applies the processors, then argmax or multinomial(softmax).
    """
    import torch

    raw = logits.float()
    scores = processors(ids, raw) if len(processors) else raw
    probs = torch.softmax(scores, dim=-1)
    if sampling.greedy:
        token = torch.argmax(scores, dim=-1)
    else:
        token = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
    tok = int(token)
    top_p, top_i = probs[0].topk(TOP)
    p_model = torch.softmax(raw, dim=-1)[0, tok] if len(processors) else probs[0, tok]
    return Step(tok, float(probs[0, tok]), float(p_model), [(int(i), float(p)) for i, p in zip(top_i, top_p)])

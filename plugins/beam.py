"""/beam: beam search next to greedy decoding, with transformers' own generate(num_beams=...).

Greedy keeps one sequence and takes the best next token each step. Beam search keeps the B best
partial sequences by total log-probability, extends each by every token, and keeps the B best
again; at the end the best finished sequence wins. So it can find a sequence whose first token
was not the greedy choice but whose whole is more likely.

    /beam smollm2-135m --beams 4 --max-tokens 8 The capital of France is
"""

from __future__ import annotations

from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import causal_only, prompt_inputs

MAX_PROMPT = 256


def sequence_logprob(model: Any, prompt_ids: Any, new_ids: list[int]) -> float:
    """The sum of log p(token | everything before it) over the generated tokens: one forward pass."""
    import torch

    ids = torch.cat([prompt_ids, torch.tensor([new_ids], device=prompt_ids.device)], dim=1)
    with torch.inference_mode():
        logp = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)
    start = prompt_ids.shape[1]
    return float(sum(logp[start - 1 + k, t] for k, t in enumerate(new_ids)))


def beam(ctx, model: Annotated[str, Arg("causal language model, e.g. smollm2-135m", choices="models")],
         text: Text = "", *,
         beams: Annotated[int, Arg("how many sequences the search keeps", min=1, max=8)] = 4,
         max_tokens: Annotated[int, Arg("new tokens per sequence", min=1, max=32)] = 8) -> Reply:
    """Beam search beside greedy decoding: every beam that survives, with its log-probability.

    Runs transformers' `generate(num_beams=B, num_return_sequences=B, length_penalty=0)` and
    greedy `generate()` on the same prompt, then scores each sequence with one forward pass, so
    the numbers shown are the model's own log-probabilities of the new tokens.
    """
    import torch

    if not text.strip():
        raise ToolError(f"Give a prompt, e.g. `/beam {model} --beams 4 The capital of France is`.")
    causal_only(ctx.tutor.registry, model, "beam search")
    with ctx.model(model) as lm:
        inputs, _ = prompt_inputs(lm, text, "beam", MAX_PROMPT)
        ids, n = inputs["input_ids"], inputs["input_ids"].shape[1]
        pad = lm.tokenizer.eos_token_id if lm.tokenizer.pad_token_id is None else lm.tokenizer.pad_token_id
        common = dict(max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False, pad_token_id=pad,
                      attention_mask=inputs.get("attention_mask"))
        with torch.inference_mode():
            greedy = lm.model.generate(ids, num_beams=1, **common)[0, n:].tolist()
            out = lm.model.generate(ids, num_beams=beams, num_return_sequences=beams, length_penalty=0.0,
                                    early_stopping=True, **common)
        found = [row[n:].tolist() for row in out]
        scored = [{"ids": s, "text": lm.tokenizer.decode(s), "logprob": round(sequence_logprob(lm.model, ids, s), 4)}
                  for s in found]
        g = {"ids": greedy, "text": lm.tokenizer.decode(greedy),
             "logprob": round(sequence_logprob(lm.model, ids, greedy), 4)}
    best = scored[0]
    rows = [[f"beam {i + 1}", repr(b["text"]), f"{b['logprob']:.3f}"] for i, b in enumerate(scored)]
    rows.append(["greedy", repr(g["text"]), f"{g['logprob']:.3f}"])
    same = best["ids"] == g["ids"]
    lines = [f"`{lm.spec.id}`, prompt {text!r}: {beams} beams of {max_tokens} new tokens (transformers' "
             f"`generate(num_beams={beams})`, no length penalty) beside greedy decoding. The score is the sum "
             "of the log-probabilities of the new tokens (higher is more likely; 0 would be certain).",
             ("The best beam is the greedy sequence: here the locally best token each step was also best overall."
              if same else f"The best beam ({best['logprob']:.3f}) beats greedy ({g['logprob']:.3f}): it passed "
                           "through a token greedy rejected, and the whole sequence came out more likely.")]
    if "untrained" in lm.spec.label:
        lines.append("These weights are untrained, so every sequence is noise; the search itself works the same.")
    return Reply(text="\n\n".join(lines), table=Table(["sequence", "text", "log-probability"], rows),
                 data={"model": lm.spec.id, "prompt_ids": ids[0].tolist(), "beams": scored, "greedy": g,
                       "best_is_greedy": same, "best_beats_greedy": best["logprob"] >= g["logprob"] - 1e-4,
                       "num_beams": beams, "max_tokens": max_tokens},
                 buttons=[f"/generate {lm.spec.id} --greedy --max-tokens {max_tokens} {text}"])


@hookimpl
def register_tools(register):
    register(beam, example="/beam smollm2-135m --beams 4 --max-tokens 8 The capital of France is",
             phrases=['beam search', 'beams'])

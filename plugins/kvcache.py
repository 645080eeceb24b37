"""/kvcache: why generation stores keys and values, measured on a real model.

Without a cache every step runs the whole sequence through the model again; with one, a step
runs only the new token and reads the keys and values of earlier positions from the cache.
This tool decodes greedily both ways, records the cache's shape after every step, counts the
positions each way computes, times both, and checks that the two give the same tokens.

    /kvcache smollm2-135m --steps 8 The capital of France is
"""

from __future__ import annotations

import inspect
import time
from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import causal_only, prompt_inputs

MAX_PROMPT = 256


def _layer0_shape(cache: Any) -> list[int]:
    """(batch, key/value heads, positions, head size) of layer 0's keys."""
    if hasattr(cache, "layers"):  # transformers' DynamicCache
        return list(cache.layers[0].keys.shape)
    return list(cache[0][0].shape)  # the legacy tuple of (key, value) per layer


def _cache_name(model: Any) -> str:
    """transformers 5 calls the cache argument and output `cache`; 4.x called them `past_key_values`."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _with_cache(model: Any, ids: Any, steps: int) -> tuple[list[int], list[list[int]], int, float]:
    import torch

    name = _cache_name(model)
    out, shapes, computed = [], [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        result = model(input_ids=ids, use_cache=True)  # the prompt once: its keys and values are cached
        computed += ids.shape[1]
        for k in range(steps):
            nxt = int(result.logits[0, -1].argmax())
            out.append(nxt)
            shapes.append(_layer0_shape(getattr(result, name)))
            if k < steps - 1:  # only the new token goes in; attention reads the rest from the cache
                result = model(input_ids=torch.tensor([[nxt]], device=ids.device),
                               use_cache=True, **{name: getattr(result, name)})
                computed += 1
    return out, shapes, computed, time.perf_counter() - start


def _without_cache(model: Any, ids: Any, steps: int) -> tuple[list[int], int, float]:
    import torch

    out, computed = [], 0
    start = time.perf_counter()
    with torch.inference_mode():
        seq = ids
        for _ in range(steps):
            logits = model(input_ids=seq, use_cache=False).logits
            computed += seq.shape[1]
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            seq = torch.cat([seq, torch.tensor([[nxt]], device=ids.device)], dim=1)
    return out, computed, time.perf_counter() - start


def kvcache(ctx, model: Annotated[str, Arg("causal language model, e.g. smollm2-135m", choices="models")],
            text: Text = "", *,
            steps: Annotated[int, Arg("tokens to generate", min=1, max=64)] = 8) -> Reply:
    """Generate with and without the key/value cache: the cache's shape per step and the cost of each.

    Decodes greedily twice: once re-running the whole sequence every step, once feeding only
    the new token and the cache. Shows the cache's shape (batch, key/value heads, positions,
    head size) growing by one position per step, the positions each way computes, the time
    each took on this machine (one run, not a benchmark), and whether the tokens agree.
    """
    if not text.strip():
        raise ToolError(f"Give a prompt, e.g. `/kvcache {model} --steps 8 The capital of France is`.")
    causal_only(ctx.tutor.registry, model, "a key/value cache for generation")
    with ctx.model(model) as lm:
        inputs, _ = prompt_inputs(lm, text, "kvcache", MAX_PROMPT)
        ids = inputs["input_ids"]
        cached, shapes, cost_with, t_with = _with_cache(lm.model, ids, steps)
        plain, cost_without, t_without = _without_cache(lm.model, ids, steps)
        n = ids.shape[1]
        layers = lm.model.config.num_hidden_layers
        words = [lm.tokenizer.decode([i]) for i in cached]
    rows = [[k + 1, repr(words[k]), " x ".join(map(str, s)), n + k, n + k] for k, s in enumerate(shapes)]
    same = cached == plain
    lines = [f"`{lm.spec.id}`, a {n}-token prompt, {steps} greedy steps. The cache holds a key and a value "
             f"tensor per layer ({layers} layers); layer 0's keys are shown, shaped (batch, key/value heads, "
             "positions, head size): one more position after every step.",
             f"**Without the cache** each step re-reads the whole sequence: {cost_without:,} positions computed "
             f"in all ({t_without:.2f} s here). **With it**, the prompt once and then one position per step: "
             f"{cost_with:,} positions ({t_with:.2f} s). The times are one run on this machine, not a benchmark; "
             "the counts are exact.",
             "Both ways chose the same tokens." if same else
             "The tokens differ (rounding in low precision can flip a near tie).",
             "The price is memory: 2 (key and value) x layers x key/value heads x head size x positions numbers."]
    return Reply(text="\n\n".join(lines),
                 table=Table(["step", "token", "cache shape (layer 0 keys)", "positions in cache",
                              "positions re-read without cache"], rows),
                 data={"model": lm.spec.id, "prompt_tokens": n, "steps": steps, "layers": layers,
                       "cache_shapes": shapes, "positions_computed_with_cache": cost_with,
                       "positions_computed_without_cache": cost_without, "same_tokens": same, "tokens": cached,
                       "seconds_with_cache": round(t_with, 4), "seconds_without_cache": round(t_without, 4)},
                 buttons=[f"/kvcache {lm.spec.id} --steps {min(64, steps * 4)} {text}"])


@hookimpl
def register_tools(register):
    register(kvcache, example="/kvcache smollm2-135m --steps 8 The capital of France is",
             phrases=['kv cache', 'key/value cache', 'key value cache'])

"""/lens: the logit lens. What would the model predict if it stopped after block i?

Each block's output (the residual stream) goes through the model's own final norm and
unembedding, exactly as the last block's output does; at the last block this is the model's
real prediction, which the tool checks against the logits the model returns.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import blocks_of, family_of, full_name, prompt_inputs, recording
from tutor.figures import Heatmap
from tutor.tokenizers import visible

MAX_TOKENS = 512
# The chart's positions: the last six, so a learner's usual short prompt is charted whole. Each
# costs one unembedding per layer (for SmolLM2 31 x 576 x 49,152 = 0.88 G multiply-adds, about 6.5
# times what its forward pass spends on one prompt token), so the chart, not the forward, sets
# /lens's cost over a plain forward (P8, bench/bench_inspect.py). On a 32-token prompt six columns
# are 5.3 G multiply-adds against the forward's 4.3 G, so the lens does about twice the forward's
# arithmetic; on this project's 2-core CPU runs gave 1.43x-1.83x, at the edge of P8's 1.5x, and
# three columns 1.19x-1.53x (the bench prints both). Fewer by default would flatter that figure by
# showing less; --positions asks for more or fewer.
GRID_POSITIONS = 6
# rows of the unembedding per slice (unembed_cells): 2,048-4,096 were fastest for SmolLM2 on 2 CPU cores
VOCAB_CHUNK = 4096


def lens_parts(model: Any) -> tuple[Any, Any]:
    """(final norm, unembedding) of a causal LM, or a ToolError saying why the lens cannot work."""
    unembed = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if unembed is None:
        raise ToolError(f"{type(model).__name__} has no unembedding (language-model head): it is an encoder "
                        "that outputs vectors, not next-token predictions. Try /lens smollm2-135m.")
    fam = family_of(model)
    if fam is None or fam.final_norm is None:
        raise ToolError(f"/lens has no name map for model_type {model.config.model_type!r}: it needs to know "
                        "which module is the final norm. Families it knows: gpt2, llama.")
    return model.get_submodule(full_name(model, fam.final_norm)), unembed


def lens(ctx, model: Annotated[str, Arg("a causal LM, e.g. smollm2-135m", choices="models")],
         prompt: Text = "",
         *, top: Annotated[int, Arg("how many tokens to show per layer", min=1, max=20)] = 5,
         position: Annotated[int, Arg("which token's prediction (0 = first; -1 = last)")] = -1,
         positions: Annotated[int, Arg("how many of the last tokens the chart shows", min=1, max=16)] = GRID_POSITIONS,
         ) -> Reply:
    """The logit lens: the next-token prediction after each block, read with the model's own final norm and unembedding.

    Early blocks usually predict something generic; watch the answer appear layer by layer.
    """
    with ctx.model(model, shared=True) as lm:  # one inference pass: decoding streams carry on meanwhile
        norm, unembed = lens_parts(lm.model)
        inputs, tokens = prompt_inputs(lm, prompt, "lens", MAX_TOKENS)
        if not -len(tokens) <= position < len(tokens):
            raise ToolError(f"--position must be between {-len(tokens)} and {len(tokens) - 1} "
                            f"(the prompt has {len(tokens)} tokens), but got {position}.")
        pos = position % len(tokens)
        last = max(0, len(tokens) - positions)
        streams, cells, col, diff = _lens_logits(lm.model, inputs, norm, unembed, last, pos, ctx.cancel)
        return _reply(lm, tokens, pos, streams, lens_read(cells, col, top), last, top, diff)


def _lens_logits(model: Any, inputs: dict, norm: Any, unembed: Any, last: int, pos: int, cancel: Any):
    """One forward pass, then one unembedding of every layer's stream at the positions shown (the
    grid's, and `pos` if it lies before them): the layer names, what `lens_read` needs, and how
    far the last layer's lens lies from the model's own logits at `pos`.

    hidden_states[i] is the stream entering block i (0: the embeddings), so it is block i-1's
    output; the last entry is after the final norm, so the last block's raw output comes from
    a hook on that block alone.

    The check reads the model's own logits at `pos` as its head makes them, lm_head(final hidden
    state), with that state as one more row of the lens's unembedding: the forward itself
    computes no logits, since at one position its head would read all of its weights (113 MB for
    SmolLM2) for one row."""
    import torch

    blocks_name, blocks = blocks_of(model)
    final = f"{blocks_name}.{len(blocks) - 1}"
    none = torch.zeros(0, dtype=torch.long)
    keep = {"logits_to_keep": none} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    with recording(model, keep=(final,), only=(final,), cancel=cancel) as calls, torch.inference_mode():
        out = model(**inputs, output_hidden_states=True, **keep)
        hidden = [*out.hidden_states[:len(blocks)], calls[-1].output]  # each (1, T, d)
        names = ["embeddings", *(f"{blocks_name}.{i}" for i in range(len(blocks)))]
        columns = ([pos] if pos < last else []) + list(range(last, hidden[0].shape[1]))
        stream = norm(torch.stack([h[0, columns] for h in hidden]))  # (layers + 1, positions, d)
        col = 0 if pos < last else pos - last
        best, top1, lse, at_col, own = unembed_cells(stream, unembed, col, out.hidden_states[-1][0, pos])
        diff = (at_col[-1] - own).abs().max().item()
    return names, (best, top1, lse, at_col), col, diff


def unembed_cells(stream: Any, unembed: Any, col: int, extra: Any):
    """The unembedding of every cell of `stream` (layers, positions, d), read as it is computed:
    each cell's best logit, its token id and the logsumexp over the vocabulary, every layer's
    full logits at column `col` (the one the table details), and the logits of `extra` (d,).

    The vocabulary goes through in slices of VOCAB_CHUNK rows of the unembedding: each slice's
    maximum and sum of exponentials are taken while it is still in cache, and the whole
    (layers, positions, vocab) logits are never written out (97 MB for SmolLM2 at 16
    positions). On one CPU thread this pass took about a third less time than one unembedding
    followed by a max and a logsumexp over its output (SmolLM2, six positions: 183 ms against
    278 ms). The slices' logsumexps combine exactly:
    lse = M + log sum_s exp(m_s - M) sum exp(logits_s - m_s), with m_s each slice's max and M theirs."""
    import torch
    import torch.nn.functional as F

    layers, positions, width = stream.shape
    cells = layers * positions
    flat = torch.cat([stream.reshape(cells, width), extra[None]])
    if isinstance(unembed, torch.nn.Linear):
        weight, bias = unembed.weight, unembed.bias
        vocab, chunk = weight.shape[0], VOCAB_CHUNK
        part_of = lambda lo: F.linear(flat, weight[lo:lo + chunk], None if bias is None else bias[lo:lo + chunk])  # noqa: E731
    else:  # some other head: one slice, the whole vocabulary
        whole = unembed(flat)
        vocab = chunk = whole.shape[-1]
        part_of = lambda lo: whole  # noqa: E731
    at_col = flat.new_empty((layers, vocab), dtype=torch.float32)
    at_extra = flat.new_empty(vocab, dtype=torch.float32)
    maxes, ids, sums = [], [], []
    for lo in range(0, vocab, chunk):
        rows = part_of(lo).float()  # a no-op cast on CPU
        part = rows[:cells].view(layers, positions, -1)
        at_col[:, lo:lo + part.shape[-1]] = part[:, col]
        at_extra[lo:lo + part.shape[-1]] = rows[cells]
        m = part.amax(-1)
        maxes.append(m)
        ids.append(_argmax(part) + lo)
        # in place (the slice is not needed again); clamped so no exp lands among the subnormal
        # floats, which the CPU computes many times slower (below e^-80 a term cannot move a sum
        # that holds e^0 = 1 in float32, so the clamp changes no result)
        sums.append(part.sub_(m[..., None]).clamp_(min=-80.0).exp_().sum(-1))
    maxes_ = torch.stack(maxes)  # (slices, layers, positions)
    best, which = maxes_.max(0)
    top1 = torch.stack(ids).gather(0, which[None])[0]
    lse = best + (torch.stack(sums) * (maxes_ - best).exp_()).sum(0).log_()
    return best, top1, lse, at_col, at_extra


def _argmax(part: Any) -> Any:
    """Index of the maximum along the last axis (the first, on a tie, as torch documents too).
    On the CPU through numpy: torch's CPU argmax (and max with indices) over one slice (31 layers x 6
    positions x 4,096 logits) took 0.7-1.8 ms against numpy's 0.09 ms, one thread each."""
    import torch

    if part.device.type != "cpu":
        return part.argmax(-1)
    return torch.from_numpy(part.numpy().argmax(-1))


def lens_read(cells: tuple, col: int, top: int) -> dict[str, Any]:
    """What the reply shows, read from `unembed_cells`: every cell's top-1 id and probability,
    and at column `col` each layer's `top` best tokens, where the last layer's choice (the
    prediction) ranks and its probability.

    A probability is exp(logit - logsumexp): the same numbers softmax gives
    (tests/test_inspect.py checks them against it)."""
    import torch

    best, ids, lse, chosen = cells
    with torch.inference_mode():
        chosen_lse = lse[:, col, None]  # (layers + 1, 1)
        top_logit, top_id = chosen.topk(top, -1)
        final_id = int(ids[-1, col])
        final_logit = chosen[:, final_id:final_id + 1]
        return {"top1": ids.tolist(), "top1_p": (best - lse).exp().tolist(), "final_id": final_id,
                "top_id": top_id.tolist(), "top_p": (top_logit - chosen_lse).exp().tolist(),
                "final_rank": (chosen > final_logit).sum(-1).tolist(),  # 0: already top-1 there
                "final_p": (final_logit - chosen_lse).exp()[:, 0].tolist()}


def _reply(lm: Any, tokens: list[str], pos: int, names: list[str], read: dict, last: int, top: int,
           diff: float) -> Reply:
    early = pos < last  # then column 0 is pos, and the grid's columns follow
    distinct = sorted({i for row in read["top1"] + read["top_id"] for i in row})
    decode = dict(zip(distinct, lm.tokenizer.batch_decode([[i] for i in distinct]))).__getitem__  # one call
    grid = [[decode(i) for i in row[int(early):]] for row in read["top1"]]
    grid_p = [row[int(early):] for row in read["top1_p"]]
    final_id = read["final_id"]
    layers, rows = [], []
    for i, name in enumerate(names):
        best = [{"token": decode(t), "id": t, "p": round(q, 5)} for q, t in zip(read["top_p"][i], read["top_id"][i])]
        layers.append({"layer": i - 1 if i else "embeddings", "name": name, "top": best,
                       "final_token_rank": read["final_rank"][i], "final_token_p": round(read["final_p"][i], 5)})
        rows.append(["emb" if not i else i - 1, *(f"{b['token']!r} {b['p']:.3f}" for b in best)])
    first = next((layer["layer"] for layer in layers if layer["final_token_rank"] == 0), None)
    text = (f"After {tokens[pos]!r} (position {pos}) `{lm.spec.id}` predicts **{decode(final_id)!r}**. "
            f"Reading each block's output through the final norm and the unembedding, that token is first "
            f"top-1 at layer {first}. The last layer's lens equals the model's own logits "
            f"(largest difference {diff:.2g}).")
    if last:
        text += f" The chart shows the last {len(tokens) - last} tokens (`--positions N` sets how many, up to 16)."
    if "untrained" in lm.spec.label:
        text += " This model has untrained weights: its predictions are noise, compare a trained model."
    return Reply(text=text, table=Table(["layer", *(f"top {k + 1}" for k in range(top))], rows),
                 figure=_grid_chart(lm.spec.id, tokens, last, grid, grid_p),
                 data={"model": lm.spec.id, "tokens": tokens, "position": pos, "prediction": decode(final_id),
                       "prediction_id": final_id, "first_layer_top1": first, "layers": layers,
                       "grid": {"positions": list(range(last, len(tokens))), "top1": grid,
                                "p": [[round(q, 5) for q in row] for row in grid_p]},
                       "last_layer_max_abs_diff": diff})


def _grid_chart(model_id: str, tokens: list[str], last: int, grid: list[list[str]],
                grid_p: list[list[float]]) -> Heatmap:
    """Layers (rows, the last on top) x the last positions: the top-1 next token, shaded and
    labelled with its probability. A shaded HTML table on the page: drawing the same chart with
    matplotlib cost more than the model's forward pass (bench/bench_inspect.py)."""
    layer = lambda i: "emb" if not i else str(i - 1)  # noqa: E731
    order = range(len(grid) - 1, -1, -1)
    shown = tokens[last:]
    return Heatmap(
        title=f"logit lens: top-1 next token after each layer ({model_id})",
        rows=[layer(i) for i in order], columns=[visible(t) for t in shown],
        cells=[[visible(t)[:12] for t in grid[i]] for i in order], values=[grid_p[i] for i in order],
        caption="rows: layers (emb = the embeddings); columns: the input tokens, each cell the top-1 token "
                "predicted to follow it; shade and number: its probability, white to dark blue = 0 to 1",
        tips=[[f"layer {layer(i)}, after {t!r} (position {last + c}): {g!r}, p = {p:.4f}"
               for c, (t, g, p) in enumerate(zip(shown, grid[i], grid_p[i]))] for i in order])


@hookimpl
def register_tools(register):
    register(lens, example="/lens smollm2-135m The capital of France is",
             phrases=['logit lens', 'lens', 'each|every layer predict', 'layer by layer'])

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

MAX_TOKENS = 512
GRID_POSITIONS = 6  # the last positions charted: readable, and their unembedding stays a fraction of a forward


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
         position: Annotated[int, Arg("which token's prediction (0 = first; -1 = last)")] = -1) -> Reply:
    """The logit lens: the next-token prediction after each block, read with the model's own final norm and unembedding.

    Early blocks usually predict something generic; watch the answer appear layer by layer.
    """
    import torch

    with ctx.model(model, shared=True) as lm:  # one inference pass: decoding streams carry on meanwhile
        norm, unembed = lens_parts(lm.model)
        inputs, tokens = prompt_inputs(lm, prompt, "lens", MAX_TOKENS)
        if not -len(tokens) <= position < len(tokens):
            raise ToolError(f"--position must be between {-len(tokens)} and {len(tokens) - 1} "
                            f"(the prompt has {len(tokens)} tokens), but got {position}.")
        pos = position % len(tokens)
        last = max(0, len(tokens) - GRID_POSITIONS)
        streams, logits, diff = _lens_logits(lm.model, inputs, norm, unembed, last, pos, ctx.cancel)
        return _reply(lm, tokens, pos, streams, logits, last, top, diff)


def _lens_logits(model: Any, inputs: dict, norm: Any, unembed: Any, last: int, pos: int, cancel: Any):
    """One forward pass, then one batched unembedding of every layer's stream at the positions
    shown (the grid's, and `pos` if it lies before them): logits (layers + 1, positions, vocab).

    hidden_states[i] is the stream entering block i (0: the embeddings), so it is block i-1's
    output; the last entry is after the final norm, so the last block's raw output comes from
    a hook on that block alone."""
    import torch

    blocks_name, blocks = blocks_of(model)
    final = f"{blocks_name}.{len(blocks) - 1}"
    shown = inputs["input_ids"].shape[1] - last  # the grid's positions: the model's own logits for those alone
    keep = {"logits_to_keep": shown} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    with recording(model, keep=(final,), only=(final,), cancel=cancel) as calls, torch.inference_mode():
        out = model(**inputs, output_hidden_states=True, **keep)
        hidden = [*out.hidden_states[:len(blocks)], calls[-1].output]  # each (1, T, d)
        names = ["embeddings", *(f"{blocks_name}.{i}" for i in range(len(blocks)))]
        columns = ([pos] if pos < last else []) + list(range(last, hidden[0].shape[1]))
        stream = torch.stack([h[0, columns] for h in hidden])  # (layers + 1, positions, d)
        logits = unembed(norm(stream)).float()  # (layers + 1, positions, vocab)
        diff = (logits[-1, int(pos < last):] - out.logits[0, -shown:].float()).abs().max().item()
    return names, logits, diff


def _reply(lm: Any, tokens: list[str], pos: int, names: list[str], logits: Any, last: int, top: int,
           diff: float) -> Reply:
    import torch

    cache: dict[int, str] = {}
    decode = lambda i: cache.setdefault(i, lm.tokenizer.decode([i]))  # noqa: E731
    early = pos < last  # then column 0 is pos, and the grid's columns follow
    chosen = logits[:, 0 if early else pos - last]  # (layers + 1, vocab)
    cells = logits[:, int(early):]  # (layers + 1, grid positions, vocab)
    top1, grid_ids = cells.max(-1)
    grid_p = (top1 - torch.logsumexp(cells, -1)).exp()  # softmax's top-1 without writing a softmax out
    grid = [[decode(i) for i in row] for row in grid_ids.tolist()]
    final_id = int(chosen[-1].argmax())
    probs = torch.softmax(chosen, -1)
    p_top, id_top = probs.topk(top, -1)
    ranks = (chosen > chosen[:, final_id:final_id + 1]).sum(-1).tolist()  # 0: already top-1 there
    layers, rows = [], []
    for i, name in enumerate(names):
        best = [{"token": decode(t), "id": t, "p": round(q, 5)} for q, t in zip(p_top[i].tolist(), id_top[i].tolist())]
        layers.append({"layer": i - 1 if i else "embeddings", "name": name, "top": best,
                       "final_token_rank": ranks[i], "final_token_p": round(float(probs[i, final_id]), 5)})
        rows.append(["emb" if not i else i - 1, *(f"{b['token']!r} {b['p']:.3f}" for b in best)])
    first = next((layer["layer"] for layer in layers if layer["final_token_rank"] == 0), None)
    text = (f"After {tokens[pos]!r} (position {pos}) `{lm.spec.id}` predicts **{decode(final_id)!r}**. "
            f"Reading each block's output through the final norm and the unembedding, that token is first "
            f"top-1 at layer {first}. The last layer's lens equals the model's own logits "
            f"(largest difference {diff:.2g}).")
    if "untrained" in lm.spec.label:
        text += " This model has untrained weights: its predictions are noise, compare a trained model."
    return Reply(text=text, table=Table(["layer", *(f"top {k + 1}" for k in range(top))], rows),
                 figure=_grid_figure(lm.spec.id, tokens[last:], grid, grid_p.tolist()),
                 data={"model": lm.spec.id, "tokens": tokens, "position": pos, "prediction": decode(final_id),
                       "prediction_id": final_id, "first_layer_top1": first, "layers": layers,
                       "grid": {"positions": list(range(last, len(tokens))), "top1": grid},
                       "last_layer_max_abs_diff": diff})


def _grid_figure(model_id: str, tokens: list[str], grid: list[list[str]], grid_p: list[list[float]]) -> Any:
    """Layers (rows) x positions (columns): the top-1 token, shaded by its probability. A token
    is written where it becomes top-1 and left blank while the layers above keep it, so the
    chart shows where each prediction appears (and draws a fraction of the labels).

    Drawing, not the model, is most of what /lens costs (bench/bench_inspect.py), and every text
    is measured and drawn twice (the page saves with bbox_inches="tight"), so the chart keeps
    texts few: no colorbar (its own axes and ticks; the label says what the shade means), a
    layer tick every 5 layers, margins fixed in inches rather than found by tight_layout."""
    from matplotlib.figure import Figure

    width, height = 0.9 * len(tokens) + 1.0, 0.16 * len(grid) + 1.3
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.45 / width, right=1 - 0.1 / width, bottom=0.75 / height, top=1 - 0.45 / height)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(grid_p, aspect="auto", cmap="Blues", vmin=0, vmax=1, origin="lower")
    for r, row in enumerate(grid):
        for c, tok in enumerate(row):
            if r and grid[r - 1][c] == tok:
                continue
            ax.text(c, r, repr(tok)[1:-1][:8], ha="center", va="center", fontsize=6,
                    color="white" if grid_p[r][c] > 0.6 else "black")
    ax.set_xticks(range(len(tokens)), [repr(t)[1:-1][:8] for t in tokens], fontsize=7)
    rows = range(0, len(grid), 5)
    ax.set_yticks(rows, ["emb" if not r else str(r - 1) for r in rows], fontsize=6)
    ax.set_xlabel("input token (the prediction is for the token after it)\ncell: the top-1 next token where "
                  "it first appears; shade: its probability, white to dark blue = 0 to 1", fontsize=7)
    ax.set_ylabel("layer", fontsize=7)
    ax.set_title(f"logit lens: top-1 next token after each layer ({model_id})", fontsize=8)
    return fig


@hookimpl
def register_tools(register):
    register(lens, example="/lens smollm2-135m The capital of France is",
             phrases=['logit lens', 'lens', 'each|every layer predict', 'layer by layer'])

"""/lens: the logit lens. What would the model predict if it stopped after block i?

Each block's output (the residual stream) goes through the model's own final norm and
unembedding, exactly as the last block's output does; at the last block this is the model's
real prediction, which the tool checks against the logits the model returns.
"""

from __future__ import annotations

from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import blocks_of, family_of, full_name, prompt_inputs, recording

MAX_TOKENS = 512
GRID_POSITIONS = 12  # the chart shows the last positions; more would not be readable


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

    with ctx.model(model) as lm:
        norm, unembed = lens_parts(lm.model)
        inputs, tokens = prompt_inputs(lm, prompt, "lens", MAX_TOKENS)
        if not -len(tokens) <= position < len(tokens):
            raise ToolError(f"--position must be between {-len(tokens)} and {len(tokens) - 1} "
                            f"(the prompt has {len(tokens)} tokens), but got {position}.")
        pos = position % len(tokens)
        blocks_name, blocks = blocks_of(lm.model)
        names = [f"{blocks_name}.{i}" for i in range(len(blocks))]
        with recording(lm.model, keep=tuple(names), only=tuple(names), cancel=ctx.cancel) as calls, \
                torch.inference_mode():
            out = lm.model(**inputs, output_hidden_states=True)
            # the stream entering block 0 (embeddings) then each block's output, in block order
            streams = [("embeddings", out.hidden_states[0])]
            streams += [(c.name, c.output) for c in sorted(calls, key=lambda c: names.index(c.name))]
            last = max(0, len(tokens) - GRID_POSITIONS)
            decode = lambda i: lm.tokenizer.decode([i])  # noqa: E731
            grid, grid_p, chosen = [], [], []
            for _, h in streams:  # one layer at a time: only (positions, vocab) logits live at once
                logits = unembed(norm(h[:, last:])).float()[0]
                p, ids = torch.softmax(logits, -1).max(-1)
                grid.append([decode(int(i)) for i in ids])
                grid_p.append(p.tolist())
                at = logits[pos - last].clone() if pos >= last else unembed(norm(h[:, pos:pos + 1])).float()[0, 0]
                chosen.append(at)  # a copy, so this layer's full logits can be freed
            diff = (logits - out.logits[0, last:].float()).abs().max().item()
        return _reply(lm, tokens, pos, streams, chosen, (grid, grid_p), last, top, diff)


def _reply(lm: Any, tokens: list[str], pos: int, streams: list, chosen: list, grids: tuple, last: int,
           top: int, diff: float) -> Reply:
    import torch

    decode = lambda i: lm.tokenizer.decode([i])  # noqa: E731
    final_id = int(chosen[-1].argmax())
    layers, rows = [], []
    for i, ((name, _), lg) in enumerate(zip(streams, chosen)):
        probs = torch.softmax(lg, -1)
        p, ids = probs.topk(top)
        best = [{"token": decode(int(t)), "id": int(t), "p": round(float(q), 5)} for q, t in zip(p, ids)]
        rank = int((lg > lg[final_id]).sum())  # 0 = the final answer is already top-1 here
        layers.append({"layer": i - 1 if i else "embeddings", "name": name, "top": best,
                       "final_token_rank": rank, "final_token_p": round(float(probs[final_id]), 5)})
        rows.append(["emb" if not i else i - 1, *(f"{b['token']!r} {b['p']:.3f}" for b in best)])
    grid, grid_p = grids
    first = next((layer["layer"] for layer in layers if layer["final_token_rank"] == 0), None)
    text = (f"After {tokens[pos]!r} (position {pos}) `{lm.spec.id}` predicts **{decode(final_id)!r}**. "
            f"Reading each block's output through the final norm and the unembedding, that token is first "
            f"top-1 at layer {first}. The last layer's lens equals the model's own logits "
            f"(largest difference {diff:.2g}).")
    if "untrained" in lm.spec.label:
        text += " This model has untrained weights: its predictions are noise, compare a trained model."
    return Reply(text=text, table=Table(["layer", *(f"top {k + 1}" for k in range(top))], rows),
                 figure=_grid_figure(lm.spec.id, tokens[last:], grid, grid_p),
                 data={"model": lm.spec.id, "tokens": tokens, "position": pos, "prediction": decode(final_id),
                       "prediction_id": final_id, "first_layer_top1": first, "layers": layers,
                       "grid": {"positions": list(range(last, len(tokens))), "top1": grid},
                       "last_layer_max_abs_diff": diff})


def _grid_figure(model_id: str, tokens: list[str], grid: list[list[str]], grid_p: list[list[float]]) -> Any:
    """Layers (rows) x positions (columns): the top-1 token, coloured by its probability."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.1 * len(tokens) + 2, 0.32 * len(grid) + 1.5))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(grid_p, aspect="auto", cmap="Blues", vmin=0, vmax=1, origin="lower")
    for r, row in enumerate(grid):
        for c, tok in enumerate(row):
            ax.text(c, r, repr(tok)[1:-1][:8], ha="center", va="center", fontsize=6,
                    color="white" if grid_p[r][c] > 0.6 else "black")
    ax.set_xticks(range(len(tokens)), [repr(t)[1:-1][:8] for t in tokens], rotation=45, fontsize=7)
    ax.set_yticks(range(len(grid)), ["emb"] + [str(i) for i in range(len(grid) - 1)], fontsize=6)
    ax.set_xlabel("input token (the prediction is for the token after it)")
    ax.set_ylabel("layer")
    ax.set_title(f"logit lens: top-1 next token after each layer ({model_id})")
    fig.colorbar(image, ax=ax, label="probability")
    fig.tight_layout()
    return fig


@hookimpl
def register_tools(register):
    register(lens, example="/lens smollm2-135m The capital of France is",
             phrases=['logit lens', 'lens'])

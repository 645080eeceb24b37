"""/attention: who looks at whom. Attention weights of one head, or all heads of one layer.

The weights are softmax(QK^T / sqrt(d)) per head, as the model computes them with eager attention
(the fused SDPA kernel never materialises them); the model's attention implementation is put
back afterwards, because other learners share the model.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import attention_implementation, blocks_of, prompt_inputs

MAX_TOKENS = 64  # a heatmap with more tokens per axis is not readable


def attention(ctx, model: Annotated[str, Arg("model id, e.g. smollm2-135m", choices="models")],
              prompt: Text = "",
              *, layer: Annotated[int, Arg("which block (0 = first)", min=0)] = 0,
              head: Annotated[int | None, Arg("one head; all heads of the layer when left out", min=0)] = None
              ) -> Reply:
    """Attention weights as heatmaps: each row is a token, each column a token it attends to.

    A decoder (GPT-2, Llama) only looks back, so everything above the diagonal is zero; an
    encoder (BERT) looks both ways. Rows sum to 1.
    """
    import torch

    with ctx.model(model) as lm:
        _, blocks = blocks_of(lm.model)
        if layer >= len(blocks):
            raise ToolError(f"--layer must be between 0 and {len(blocks) - 1} ({lm.spec.id} has "
                            f"{len(blocks)} layers), but got {layer}.")
        inputs, tokens = prompt_inputs(lm, prompt, "attention", MAX_TOKENS)
        with attention_implementation(lm.model, "eager"), torch.inference_mode():
            out = lm.model(**inputs, output_attentions=True)
        weights = out.attentions[layer][0].float().cpu()  # (heads, T, T)
    heads = weights.shape[0]
    if head is not None and head >= heads:
        raise ToolError(f"--head must be between 0 and {heads - 1} (layer {layer} of {lm.spec.id} has "
                        f"{heads} heads), but got {head}.")
    shown = [head] if head is not None else list(range(heads))
    causal = bool(torch.triu(weights, diagonal=1).abs().max() == 0)
    rows = []
    for h in shown:  # per head: the token each position attends to most
        w = weights[h]
        rows.append([h, *(f"{tokens[int(w[i].argmax())]!r} {float(w[i].max()):.2f}" for i in range(len(tokens)))])
    what = f"head {head}" if head is not None else f"all {heads} heads"
    text = (f"Attention of `{lm.spec.id}`, layer {layer}, {what}, for {len(tokens)} tokens. "
            + ("Causal: nothing above the diagonal, each token sees only itself and earlier tokens."
               if causal else "Bidirectional: each token attends to tokens on both sides.")
            + " The table shows, per head, the token each position attends to most.")
    return Reply(text=text, figure=_heatmaps(weights, shown, tokens, layer),
                 table=Table(["head", *(repr(t) for t in tokens)], rows),
                 data={"model": lm.spec.id, "tokens": tokens, "layer": layer, "head": head, "heads": heads,
                       "layers": len(blocks), "causal": causal,
                       "weights": [[[round(v, 5) for v in r] for r in weights[h].tolist()] for h in shown]},
                 buttons=[f"/attention {lm.spec.id} --layer {layer} --head {shown[0]} {prompt}"]
                 if head is None else [f"/attention {lm.spec.id} --layer {layer} {prompt}"])


def _heatmaps(weights: Any, shown: list[int], tokens: list[str], layer: int) -> Any:
    from matplotlib.figure import Figure

    cols = 1 if len(shown) == 1 else min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    size = 6 if len(shown) == 1 else 3
    fig = Figure(figsize=(size * cols, size * rows))
    labels = [repr(t)[1:-1][:10] for t in tokens]
    small = len(shown) > 1 or len(tokens) > 24
    for k, h in enumerate(shown):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(weights[h].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer} head {h}", fontsize=8)
        if not small or k % cols == 0:  # token labels on the first column only in a grid
            ax.set_yticks(range(len(tokens)), labels, fontsize=5 if small else 8)
        else:
            ax.set_yticks([])
        ax.set_xticks(range(len(tokens)), labels, rotation=90, fontsize=5 if small else 8)
    fig.supxlabel("attends to (key)", fontsize=8)
    fig.supylabel("token (query)", fontsize=8)
    fig.tight_layout()
    return fig


@hookimpl
def register_tools(register):
    register(attention, example="/attention smollm2-135m --layer 3 The cat sat on the mat because it was tired",
             phrases=['attention', 'attention map', 'attention pattern', 'attention heads', 'attends to'])

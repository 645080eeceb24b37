"""/embed: a token's nearest neighbours in the embedding matrix, and how positions resemble each other.

The embedding matrix has one row per token id; tokens used alike end up with rows pointing the
same way (high cosine). GPT-2-style models also learn one row per position (wpe); neighbouring
positions get similar rows, which the similarity chart shows as a bright band along the diagonal.
"""

from __future__ import annotations

from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import family_of, full_name
from tutor.figures import heatmap

MAX_PIECES = 4  # a text that splits into more tokens shows the first ones


def nearest(matrix: Any, row: int, k: int) -> list[tuple[int, float]]:
    """The k rows most similar to `row` by cosine (itself excluded), as (id, cosine)."""
    import torch

    with torch.no_grad():
        m = matrix.float()
        sims = (m @ m[row]) / (m.norm(dim=1) * m[row].norm()).clamp_min(1e-12)
        sims[row] = -2.0  # never its own neighbour
        values, ids = sims.topk(k)
    return [(int(i), float(v)) for v, i in zip(values, ids)]


def position_similarity(weight: Any) -> Any:
    """Cosine similarity between every pair of position rows: (positions, positions)."""
    import torch

    with torch.no_grad():
        w = torch.nn.functional.normalize(weight.float(), dim=1)
        return (w @ w.T).cpu()


def embed(ctx, model: Annotated[str, Arg("model id, e.g. smollm2-135m", choices="models")],
          token: Annotated[Text, Arg("a token or a short text; quote it to keep a leading space: \" cat\"")] = "",
          *, top: Annotated[int, Arg("how many neighbours", min=1, max=50)] = 10) -> Reply:
    """Nearest tokens in the embedding matrix (cosine), and the position-embedding similarity chart.

    Byte-level BPE tokenizers have different ids for "cat" and " cat" (with a space); quote the
    token to keep its leading space.
    """
    import torch

    if not token:
        raise ToolError(f"Give a token, e.g. `/embed {model} \" cat\"`.")
    with ctx.model(model) as lm:
        matrix = lm.model.get_input_embeddings().weight.detach()
        ids = lm.tokenizer(token, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ToolError(f"{token!r} gives no tokens with {lm.spec.id}'s tokenizer; try a word.")
        decode = lambda i: lm.tokenizer.decode([i])  # noqa: E731
        pieces = []
        for i in ids[:MAX_PIECES]:
            near = nearest(matrix, i, top)
            pieces.append({"token": decode(i), "id": i,
                           "neighbours": [{"token": decode(j), "id": j, "cosine": round(c, 5)} for j, c in near]})
        fam = family_of(lm.model)
        pos_module = full_name(lm.model, fam.positions) if fam and fam.positions else None
        similarity = position_similarity(lm.model.get_submodule(pos_module).weight.detach()) if pos_module else None
    rows = [[k + 1, *(f"{p['neighbours'][k]['token']!r} {p['neighbours'][k]['cosine']:.3f}" for p in pieces)]
            for k in range(top)]
    lines = [f"`{lm.spec.id}` embedding matrix: {matrix.shape[0]:,} tokens x {matrix.shape[1]} numbers each."]
    if len(ids) > 1:
        lines.append(f"{token!r} is {len(ids)} tokens: {', '.join(repr(decode(i)) for i in ids)}"
                     + (f"; showing the first {MAX_PIECES}." if len(ids) > MAX_PIECES else "."))
    if "untrained" in lm.spec.label:
        lines.append("These weights are untrained (random), so the neighbours are random too; "
                     "compare with a trained model such as smollm2-135m.")
    positions = None
    if similarity is not None:
        n = similarity.shape[0]
        adjacent = float(torch.diagonal(similarity, 1).mean())
        far = float(torch.diagonal(similarity, n // 2).mean())
        positions = {"module": pos_module, "positions": n, "adjacent_cosine_mean": round(adjacent, 5),
                     "half_window_cosine_mean": round(far, 5)}
        lines.append(f"Position embeddings (`{pos_module}`, {n:,} rows): neighbouring positions have mean "
                     f"cosine {adjacent:.3f}; positions {n // 2:,} apart {far:.3f}.")
    elif fam and fam.key == "llama":
        lines.append("No position-embedding matrix: this family encodes positions with rotary embeddings "
                     "(RoPE), which rotate queries and keys inside attention.")
    return Reply(text="\n\n".join(lines), table=Table(["rank", *(repr(p["token"]) for p in pieces)], rows),
                 figure=_figure(lm.spec.id, pieces[0], similarity),
                 data={"model": lm.spec.id, "tokens": pieces, "positions": positions,
                       "vocab_size": matrix.shape[0], "width": matrix.shape[1]})


def _figure(model_id: str, piece: dict, similarity: Any) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11 if similarity is not None else 5.5, 4.5))
    ax = fig.add_subplot(1, 2 if similarity is not None else 1, 1)
    near = piece["neighbours"][::-1]
    ax.barh([repr(n["token"]) for n in near], [n["cosine"] for n in near])
    ax.set_xlabel("cosine similarity")
    ax.set_title(f"nearest to {piece['token']!r} ({model_id})", fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    if similarity is not None:
        heatmap(fig, fig.add_subplot(1, 2, 2), similarity.numpy(), "position embeddings: cosine between positions",
                "position", "position", cmap="RdBu_r", vmin=-1, vmax=1)
    fig.tight_layout()
    return fig


@hookimpl
def register_tools(register):
    register(embed, example='/embed smollm2-135m " cat"',
             phrases=['embedding', 'nearest', 'neighbours', 'neighbors', 'similar tokens'])

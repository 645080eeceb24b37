"""/positions: three ways a transformer knows where a token sits, with figures.

- sinusoidal (the 2017 Transformer): a fixed table, sin and cos of the position at wavelengths
  from 2*pi to 10000*2*pi; the dot product of two rows depends only on their distance.
- learned (GPT-2's wpe): one trained row per position, read from a model.
- rope (Llama, SmolLM2): no table; queries and keys are rotated by an angle proportional to the
  position, so q·k depends only on the distance. Computed with the model's own rotary module.

    /positions sinusoidal --length 64 --dim 64
    /positions learned distilgpt2-arch
    /positions rope smollm2-135m
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from tutor import Arg, Reply, ToolError, hookimpl
from tutor.anatomy import family_of, full_name
from tutor.figures import heatmap


BASE = 10000.0  # the 2017 Transformer's longest wavelength is BASE x 2*pi


def sinusoidal(length: int, dim: int) -> Any:
    """PE[pos, 2i] = sin(pos / 10000^(2i/dim)), PE[pos, 2i+1] = cos(...): (length, dim)."""
    import torch

    pos = torch.arange(length, dtype=torch.float64)[:, None]
    freq = BASE ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


def offset_spread(gram: Any, offset: int) -> float:
    """How much row_p · row_(p+offset) varies over p: 0 means it depends only on the offset."""
    d = gram.diagonal(offset)
    return float(d.max() - d.min())


def positions(ctx, kind: Annotated[Literal["sinusoidal", "learned", "rope"], Arg("which positional encoding")],
              model: Annotated[str | None, Arg("learned / rope: the model to read it from", choices="models")] = None,
              *, length: Annotated[int, Arg("positions to show", min=2, max=1024)] = 64,
              dim: Annotated[int, Arg("sinusoidal: width of the table (even)", min=2, max=1024)] = 64) -> Reply:
    """Positional encodings side by side: sinusoidal, learned (a model's wpe) and rotary (RoPE)."""
    if kind == "sinusoidal":
        if dim % 2:
            raise ToolError(f"--dim must be even (sin and cos in pairs), got {dim}.")
        return _sinusoidal(length, dim)
    if not model:
        raise ToolError(f"Name a model: `/positions {kind} {'distilgpt2-arch' if kind == 'learned' else 'smollm2-135m'}`.")
    with ctx.model(model) as lm:
        return _learned(lm, length) if kind == "learned" else _rope(lm, length)


def _sinusoidal(length: int, dim: int) -> Reply:
    pe = sinusoidal(length, dim)
    gram = pe @ pe.T
    spread = max(offset_spread(gram, k) for k in range(1, min(length, 8)))
    fig = _figure(pe.numpy(), gram.numpy(), "sinusoidal table", "dot product between positions")
    return Reply(text=f"A sinusoidal table of {length} positions x {dim} numbers: column pair i holds sin and cos "
                      f"of position / 10000^(2i/{dim}), so the first pair turns fastest (wavelength 2*pi) and the "
                      f"last slowest (close to 10000 x 2*pi). Nothing is learned. The dot product of two rows depends "
                      f"only on their distance: for offsets 1 to 7 it varies over positions by at most {spread:.1e}.",
                 figure=fig,
                 data={"kind": "sinusoidal", "shape": [length, dim], "offset_dot_spread": spread, "base": BASE,
                       "first_wavelength": 2 * math.pi, "last_wavelength": 2 * math.pi * BASE ** ((dim - 2) / dim),
                       "learned": False})


def _learned(lm: Any, length: int) -> Reply:
    import torch

    fam = family_of(lm.model)
    name = full_name(lm.model, fam.positions) if fam and fam.positions else None
    if name is None:
        raise ToolError(f"{lm.spec.id} has no learned position table (rotary models rotate q and k instead: "
                        f"`/positions rope {lm.spec.id}`).")
    w = lm.model.get_submodule(name).weight.detach().float()
    rows = min(length, w.shape[0])
    unit = torch.nn.functional.normalize(w[:rows], dim=1)
    cos = unit @ unit.T
    adjacent = float(cos.diagonal(1).mean())
    untrained = "untrained" in lm.spec.label
    return Reply(text=f"`{name}` of {lm.spec.id}: a learned table of {w.shape[0]:,} positions x {w.shape[1]} numbers, "
                      f"one row per position (the first {rows} shown). Neighbouring rows have mean cosine "
                      f"{adjacent:.3f}. " + ("These weights are untrained, so the rows are random and no "
                                             "position resembles its neighbour: order is only learned in training. "
                                             if untrained else "Training made neighbouring positions similar. ")
                      + f"There is no row past {w.shape[0] - 1}, so the model cannot read a longer text.",
                 figure=_figure(w[:rows].numpy(), cos.numpy(), f"{name} rows", "cosine between positions"),
                 data={"kind": "learned", "module": name, "shape": list(w.shape), "adjacent_cosine_mean": adjacent,
                       "learned": True, "untrained": untrained})


def _rope(lm: Any, length: int) -> Reply:
    import torch

    rotary = next((m for n, m in lm.model.named_modules() if n.endswith("rotary_emb")), None)
    if rotary is None:
        raise ToolError(f"{lm.spec.id} has no rotary module; try `/positions learned {lm.spec.id}`.")
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    config = lm.model.config
    head = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, head), torch.randn(1, 1, 1, head)  # one query and one key, placed anywhere
    pos = torch.arange(length)[None]
    with torch.inference_mode():
        cos, sin = rotary(q.to(lm.device, lm.model.dtype), pos.to(lm.device))
        cos, sin = cos.float().cpu(), sin.float().cpu()  # (1, length, head); apply_rotary adds the head axis
        qs, ks = apply_rotary_pos_emb(q.expand(1, 1, length, head), k.expand(1, 1, length, head), cos, sin)
    scores = qs[0, 0] @ ks[0, 0].T  # (m, n): the query at position m times the key at position n
    spread = max(offset_spread(scores, d) for d in range(1, min(length, 8)))
    theta = float(getattr(config, "rope_theta", None) or getattr(config, "rope_parameters", {}).get("rope_theta", 0))
    norms = qs[0, 0].norm(dim=-1)
    return Reply(text=f"RoPE in {lm.spec.id} (computed with the model's own `rotary_emb` and transformers' "
                      f"`apply_rotary_pos_emb`): each pair of the {head} numbers of a query or key is rotated by "
                      f"position x theta_i, with theta_i = {theta:g}^(-2i/{head}). Rotation keeps lengths "
                      f"(|q| varies by {float(norms.max() - norms.min()):.1e} over positions), and the score of a "
                      f"query at m with a key at n depends only on m - n: along each diagonal it varies by at most "
                      f"{spread:.1e}. No table, no parameters, and no hard end to the positions.",
                 figure=_figure(cos[0].numpy(), scores.numpy(), "cos(position x theta_i)", "q(m) · k(n)"),
                 data={"kind": "rope", "model": lm.spec.id, "head_dim": head, "rope_theta": theta,
                       "offset_score_spread": spread, "norm_spread": float(norms.max() - norms.min()),
                       "learned": False, "parameters": sum(p.numel() for p in rotary.parameters())})


def _figure(table: Any, gram: Any, left: str, right: str) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    heatmap(fig, fig.add_subplot(1, 2, 1), table, left, "feature", "position", colorbar=False, aspect="auto",
            cmap="RdBu_r")
    heatmap(fig, fig.add_subplot(1, 2, 2), gram, right, "position", "position", cmap="viridis")
    fig.tight_layout()
    return fig


@hookimpl
def register_tools(register):
    register(positions, example="/positions sinusoidal --length 64 --dim 64",
             phrases=['positional encoding', 'positional encodings', 'positions'])

"""/inspect: a real model's modules, parameter counts, execution order and one module's output.

    /inspect distilgpt2-arch                        the module tree with parameter formulas
    /inspect distilgpt2-arch --order The cat sat    modules in the order their hooks fired
    /inspect smollm2-135m model.layers.0.input_layernorm The cat sat    one module's output
"""

from __future__ import annotations

from typing import Annotated, Any

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.anatomy import (FAMILIES, ROLES, attention_implementation, base_of, blocks_of, prompt_inputs,
                           family_of, recording)
from tutor.commands import closest

MAX_TOKENS = 512  # every module's shapes are recorded; keep one request small on a shared machine


def inspect(ctx, model: Annotated[str, Arg("model id, e.g. distilgpt2-arch", choices="models")],
            what: Annotated[Text, Arg("nothing: the module tree; LAYER PROMPT: one module's output; "
                                      "with --order: the PROMPT")] = "",
            *, order: Annotated[bool, Arg("list the modules in the order their forward hooks fire")] = False,
            attn: Annotated[str | None, Arg("attention implementation for this run",
                                            choices=("eager", "sdpa"))] = None,
            full: Annotated[bool, Arg("list every block in the tree, not only the first")] = False) -> Reply:
    """Look inside a model: its module tree and parameters, the order modules run, or one module's output.

    `/inspect MODEL` lists every module with its parameter count and the formula behind it,
    totals per block, and tied (shared) weights counted once. `--order PROMPT` runs the model
    with a forward hook on every module. `LAYER PROMPT` shows one module's output statistics.
    """
    what = what.strip()
    with ctx.model(model) as lm:
        if order:
            return _order(ctx, lm, what, attn)
        if what:
            layer, _, prompt = what.partition(" ")
            return _layer(ctx, lm, layer, prompt.strip(), attn)
        return _tree(lm, full)


# ---- the module tree and its parameters -------------------------------------------------------

def _dims(module: Any, pname: str, p: Any) -> str:
    """`768 x 2304` for one parameter; a Linear's weight is stored (out, in), we say in x out."""
    import torch

    shape = list(p.shape)
    if isinstance(module, torch.nn.Linear) and pname == "weight":
        shape = shape[::-1]
    return " x ".join(str(d) for d in shape)


def parameter_modules(model: Any) -> list[dict]:
    """Every module with its parameters; a tensor shared by two modules is counted at its first owner.

    `counted` sums to model.num_parameters(); `shared_with` names where a tied tensor was first seen.
    """
    owner: dict[int, str] = {}
    rows = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        counted, shared, terms = 0, [], []
        for pname, p in own:
            terms.append(_dims(module, pname, p))
            if id(p) in owner:
                shared.append(owner[id(p)])
            else:
                owner[id(p)] = f"{name}.{pname}" if name else pname
                counted += p.numel()
        own_total = sum(p.numel() for _, p in own)
        formula = f"{' + '.join(terms)} = {own_total:,}" if own else ""
        rows.append({"name": name or "(model)", "type": type(module).__name__,
                     "parameters": sum(p.numel() for p in module.parameters()), "own_parameters": own_total,
                     "counted": counted, "formula": formula, "shared_with": shared or None})
    total = sum(r["counted"] for r in rows) or 1
    for r in rows:  # the module's part of the whole model, e.g. 0.4712 for GPT-2's embedding table
        r["share_of_total"] = round(r["parameters"] / total, 4)
    return rows


def config_values(model: Any) -> dict:
    """The model's configuration as plain numbers and strings (n_embd, attn_pdrop, rope_theta, ...),
    plus the attention head size, so a lesson can check a width or a dropout p against the model."""
    config = model.config
    values = {k: v for k, v in sorted(config.to_dict().items())
              if isinstance(v, (int, float, str, bool)) and not k.startswith("_")}
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if heads and width:
        values["head_dim"] = getattr(config, "head_dim", None) or width // heads
    return values


def name_map_markdown(current: str | None) -> str:
    """The cross-family name map as a markdown table; the current family's column is starred."""
    fams = list(FAMILIES.values())
    head = [f"**{f.key}** (this model)" if f.key == current else f.key for f in fams]
    lines = ["| role | " + " | ".join(head) + " |", "|---|" + "---|" * len(fams)]
    rows = [("token embedding", [f.embed for f in fams]),
            ("position embedding", [f.positions or "- (rotary: rotates q and k in attention)" for f in fams]),
            ("blocks", [f.blocks for f in fams])]
    rows += [(role, [f.roles[role] for f in fams]) for role in ROLES]
    rows.append(("final norm", [f.final_norm or "- (post-norm: each block ends normalised)" for f in fams]))
    lines += [f"| {role} | " + " | ".join(f"`{n}`" for n in names) + " |" for role, names in rows]
    return "\n".join(lines)


def _tree(lm: Any, full: bool) -> Reply:
    model = lm.model
    modules = parameter_modules(model)
    total = sum(m["counted"] for m in modules)
    blocks_name, blocks = blocks_of(model)
    block_names = [f"{blocks_name}.{i}" for i in range(len(blocks))]
    by_name = {m["name"]: m for m in modules}
    block_totals = [{"name": b, "parameters": by_name[b]["parameters"]} for b in block_names]
    rows, collapsed = [], False
    for m in modules:
        later_block = any(m["name"] == b or m["name"].startswith(b + ".") for b in block_names[1:])
        if later_block and not full:
            if not collapsed and len(block_names) > 1:
                counts = sorted({b["parameters"] for b in block_totals[1:]})
                each = f"{counts[0]:,} each" if len(counts) == 1 else "see data"
                rows.append([f"{block_names[1]} ... {block_names[-1]}", type(blocks[1]).__name__,
                             f"{len(block_names) - 1} more blocks shaped like {block_names[0]} (--full lists them)",
                             each, ""])
                collapsed = True
            continue
        note = f"shares {', '.join(m['shared_with'])}: counted once" if m["shared_with"] else ""
        rows.append([m["name"], m["type"], m["formula"], f"{m['parameters']:,}", note])
    tied = [{"name": m["name"], "shared_with": m["shared_with"], "parameters": m["own_parameters"]}
            for m in modules if m["shared_with"]]
    fam = family_of(model)
    lines = [f"**{lm.spec.id}**: {lm.spec.label}. **{total:,} parameters** "
             f"(model.num_parameters() = {model.num_parameters():,})."]
    if block_totals:
        lines.append(f"{len(block_totals)} blocks under `{blocks_name}`, "
                     f"{block_totals[0]['parameters']:,} parameters each; together "
                     f"{sum(b['parameters'] for b in block_totals):,}.")
    for t in tied:
        lines.append(f"`{t['name']}` shares its weight with `{', '.join(t['shared_with'])}` (tied embeddings): "
                     f"{t['parameters']:,} parameters counted once, not twice.")
    lines.append("Formulas: a Linear/Conv1D is in x out + bias; an Embedding is rows x width; "
                 "a LayerNorm has gamma + beta; an RMSNorm has gamma only.")
    if fam:
        lines += [f"Family: **{fam.title}**. The same roles in each family (names inside the base model, "
                  f"here `{base_of(model)[1] or 'the model itself'}`):", name_map_markdown(fam.key)]
    else:
        lines.append(f"No name map for model_type {model.config.model_type!r} yet; the tree above is generic.")
    return Reply(text="\n\n".join(lines),
                 table=Table(["module", "type", "formula", "parameters", "note"], rows),
                 data={"model": lm.spec.id, "total_parameters": total, "config": config_values(model),
                       "num_parameters": model.num_parameters(), "family": fam.key if fam else None,
                       "blocks": block_totals, "blocks_total": sum(b["parameters"] for b in block_totals),
                       # every tensor counted at every module that holds it: what untied weights would cost
                       "untied_parameters": sum(m["own_parameters"] for m in modules),
                       "tied": tied, "modules": modules,
                       "name_map": {f.key: {"embed": f.embed, "positions": f.positions, "blocks": f.blocks,
                                            "final_norm": f.final_norm, **f.roles} for f in FAMILIES.values()}},
                 buttons=[f"/inspect {lm.spec.id} --order The cat sat on the mat"])


# ---- execution order ----------------------------------------------------------------------------

def never_ran_reason(name: str, module: Any, implementation: str) -> str:
    """Why a module's forward hook never fired, when we know."""
    import torch

    if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
        return "a container: the model loops over it and calls each block itself"
    if isinstance(module, torch.nn.Dropout) and ("attn" in name or "attention" in name):
        if implementation == "sdpa":
            return ("attention dropout is fused into torch's scaled_dot_product_attention "
                    "(dropout_p = this module's p, 0 in eval mode); the module object is never called")
        return ("the attention function applies dropout itself (nn.functional.dropout with this "
                "module's p, 0 in eval mode), so the module object is never called")
    return "its forward hook never fired: the model's forward does not call it for this input"


def _shape(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes[:3]) + (" ..." if len(shapes) > 3 else "")


def _order(ctx, lm: Any, prompt: str, attn: str | None) -> Reply:
    import torch

    inputs, tokens = prompt_inputs(lm, prompt, "inspect", MAX_TOKENS)
    model = lm.model
    with attention_implementation(model, attn) as implementation:
        with recording(model, cancel=ctx.cancel) as calls, torch.inference_mode():
            model(**inputs)
    ran = {c.name for c in calls}
    never = [{"name": n, "type": type(m).__name__, "reason": never_ran_reason(n, m, implementation)}
             for n, m in model.named_modules() if n not in ran]
    rows = [[i + 1, c.name or "(model)", c.kind, _shape(c.inputs), _shape(c.outputs)] for i, c in enumerate(calls)]
    other = "eager" if implementation != "eager" else "sdpa"
    lines = [f"**{len(calls)} module calls** for {len(tokens)} tokens through `{lm.spec.id}` "
             f"(attention implementation: `{implementation}`).",
             "A forward hook fires when its module *finishes*, so a container (a block, an attention "
             "module) comes after the parts it called; `call_order` in the data lists starts instead."]
    if never:
        groups: dict[tuple[str, str], list[str]] = {}  # (type, reason) -> names: six attn_dropouts, one line
        for n in never:
            groups.setdefault((n["type"], n["reason"]), []).append(f"`{n['name']}`")
        lines.append(f"**{len(never)} modules never ran:**\n" + "\n".join(
            f"- {', '.join(names)} ({kind}): {reason}" for (kind, reason), names in groups.items()))
        lines.append(f"Run again with `--attn {other}` to compare: eager attention computes softmax(QK^T/sqrt(d)) "
                     "as a tensor you can see with /attention; SDPA fuses it into one kernel.")
    return Reply(text="\n\n".join(lines), table=Table(["#", "module", "type", "input shapes", "output shapes"], rows),
                 data={"model": lm.spec.id, "tokens": tokens, "attn_implementation": implementation,
                       "order": [c.name for c in calls],
                       "call_order": [c.name for c in sorted(calls, key=lambda c: c.started)],
                       "calls": [{"name": c.name, "type": c.kind, "inputs": c.inputs, "outputs": c.outputs}
                                 for c in calls],
                       "never_ran": never},
                 buttons=[f"/inspect {lm.spec.id} --order --attn {other} {prompt}"])


# ---- one module's output ------------------------------------------------------------------------

def resolve_module(model: Any, layer: str) -> str:
    """A full module name from what the learner typed: exact, or a unique dotted suffix ("h.0.ln_1")."""
    names = [n for n, _ in model.named_modules() if n]
    if layer in names:
        return layer
    ends = [n for n in names if n.endswith("." + layer)]
    if len(ends) == 1:
        return ends[0]
    if ends:
        raise ToolError(f"{layer!r} matches {len(ends)} modules ({', '.join(ends[:4])}"
                        f"{', ...' if len(ends) > 4 else ''}); give the full name.")
    near = closest(layer, names) or closest(layer.split(".")[-1], [n.split(".")[-1] for n in names])
    hint = f" Closest: {', '.join(near)}." if near else ""
    raise ToolError(f"{type(model).__name__} has no module {layer!r}.{hint} `/inspect MODEL` lists every "
                    "module name; to run a prompt through all of them, put --order before the prompt.")


def _stats(t: Any) -> dict:
    t = t.float()
    return {"mean": t.mean().item(), "std": t.std(unbiased=False).item(), "min": t.min().item(),
            "max": t.max().item()}


def _is_norm(module: Any) -> str | None:
    kind = type(module).__name__
    if "RMSNorm" in kind:
        return "RMSNorm"
    if "LayerNorm" in kind or "Norm" in kind and hasattr(module, "weight"):
        return "LayerNorm"
    return None


def _norm_facts(module: Any, kind: str, x: Any, y: Any, tokens: list[str]) -> tuple[dict, Table]:
    """Per position (token): mean and variance before and after normalising, and gamma/beta.

    We recompute the norm by hand from the module's input and check it against its output,
    so the formula shown is the one the model really ran.
    """
    x, y = x.float().reshape(-1, x.shape[-1]), y.float().reshape(-1, y.shape[-1])
    eps = getattr(module, "eps", None) or getattr(module, "variance_epsilon", 1e-6)
    gamma = module.weight.detach().float()
    beta = module.bias.detach().float() if getattr(module, "bias", None) is not None else None
    if kind == "RMSNorm":  # x / sqrt(mean(x^2) + eps): scale only, no centring
        normed = x * (x.pow(2).mean(-1, keepdim=True) + eps).rsqrt()
    else:  # (x - mean) / sqrt(var + eps)
        normed = (x - x.mean(-1, keepdim=True)) * (x.var(-1, unbiased=False, keepdim=True) + eps).rsqrt()
    recomputed = normed * gamma + (beta if beta is not None else 0)
    per_position = []
    rows = []
    for i in range(x.shape[0]):
        p = {"position": i, "token": tokens[i] if i < len(tokens) else "",
             "mean_before": x[i].mean().item(), "var_before": x[i].var(unbiased=False).item(),
             "rms_before": x[i].pow(2).mean().sqrt().item(),
             "mean_normalised": normed[i].mean().item(), "var_normalised": normed[i].var(unbiased=False).item(),
             "mean_after": y[i].mean().item(), "var_after": y[i].var(unbiased=False).item()}
        per_position.append(p)
        rows.append([i, repr(p["token"]), *(f"{p[k]:.4g}" for k in list(p)[2:])])
    facts = {"kind": kind, "eps": eps, "gamma": _stats(gamma), "beta": _stats(beta) if beta is not None else None,
             "per_position": per_position,
             "recomputed_max_abs_error": (recomputed - y).abs().max().item()}
    table = Table(["pos", "token", "mean in", "var in", "rms in", "mean normalised", "var normalised",
                   "mean out", "var out"], rows)
    return facts, table


def _layer(ctx, lm: Any, layer: str, prompt: str, attn: str | None) -> Reply:
    import torch

    model = lm.model
    name = resolve_module(model, layer)
    if not prompt:
        raise ToolError(f"Give a prompt after the layer: `/inspect {lm.spec.id} {name} The cat sat on the mat`.")
    inputs, tokens = prompt_inputs(lm, prompt, "inspect", MAX_TOKENS)
    module = model.get_submodule(name)
    with attention_implementation(model, attn) as implementation:
        with recording(model, keep=(name,), only=(name,), cancel=ctx.cancel) as calls, torch.inference_mode():
            model(**inputs)
    if not calls or calls[0].output is None:
        reason = never_ran_reason(name, module, implementation) if not calls else "it returned no tensor"
        return Reply(text=f"`{name}` ({type(module).__name__}) produced no output for this prompt: {reason}.",
                     data={"model": lm.spec.id, "layer": name, "ran": bool(calls), "reason": reason})
    call = calls[0]
    out = call.output.float()
    stats = {"shape": list(out.shape), **_stats(out)}
    flat = out.reshape(-1, out.shape[-1]) if out.dim() > 1 else out.reshape(1, -1)
    piece = flat[:4, :8]
    counts = torch.histc(out, bins=40, min=stats["min"], max=stats["max"])
    data = {"model": lm.spec.id, "layer": name, "type": call.kind, "ran": True, "calls": len(calls),
            "tokens": tokens, **stats, "slice": [[round(v, 5) for v in row] for row in piece.tolist()],
            "histogram": {"min": stats["min"], "max": stats["max"], "counts": [int(c) for c in counts.tolist()]}}
    lines = [f"**`{name}`** ({call.kind}) output for {len(tokens)} tokens: shape {tuple(out.shape)}, "
             f"mean {stats['mean']:.4g}, std {stats['std']:.4g}, min {stats['min']:.4g}, max {stats['max']:.4g}."
             + (f" It ran {len(calls)} times; this is the first call." if len(calls) > 1 else "")]
    table = Table(["position", "token"] + [f"[{j}]" for j in range(piece.shape[1])],
                  [[i, repr(tokens[i]) if i < len(tokens) and flat.shape[0] == len(tokens) else "",
                    *(f"{v:.4f}" for v in row)] for i, row in enumerate(piece.tolist())])
    kind = _is_norm(module)
    per_position = None
    if kind and call.input is not None and call.input.shape == call.output.shape:
        facts, table = _norm_facts(module, kind, call.input, call.output, tokens)
        data["norm"] = facts
        per_position = facts["per_position"]
        beta = f"; beta mean {facts['beta']['mean']:.4g}, std {facts['beta']['std']:.4g}" if facts["beta"] else \
            " (no beta: an RMSNorm only scales)"
        lines.append(f"{kind}: gamma mean {facts['gamma']['mean']:.4g}, std {facts['gamma']['std']:.4g}{beta}. "
                     + ("Normalising divides each position by its root mean square, so the normalised "
                        "values have RMS 1 (not mean 0)." if kind == "RMSNorm" else
                        "Normalising makes each position mean 0, variance 1; then gamma scales and beta shifts.")
                     + f" Recomputed by hand, it matches the module's output within "
                       f"{facts['recomputed_max_abs_error']:.2g}.")
    else:
        lines.append("The table shows the first positions and features of the output.")
    return Reply(text="\n\n".join(lines), table=table, data=data,
                 figure=_histogram_figure(name, counts.tolist(), stats, per_position))


def _histogram_figure(name: str, counts: list[float], stats: dict, per_position: list[dict] | None) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9 if per_position else 6, 3.2))
    ax = fig.add_subplot(1, 2 if per_position else 1, 1)
    width = (stats["max"] - stats["min"]) / len(counts) or 1.0
    ax.bar([stats["min"] + (i + 0.5) * width for i in range(len(counts))], counts, width=width)
    ax.set_title(f"{name} output values")
    ax.set_xlabel("value")
    ax.set_ylabel("count")
    if per_position:
        ax2 = fig.add_subplot(1, 2, 2)
        pos = [p["position"] for p in per_position]
        ax2.plot(pos, [p["var_before"] for p in per_position], "o-", label="variance in")
        ax2.plot(pos, [p["var_normalised"] for p in per_position], "s-", label="variance normalised")
        ax2.plot(pos, [p["var_after"] for p in per_position], "^-", label="variance out (x gamma + beta)")
        ax2.set_yscale("log")
        ax2.set_xlabel("position")
        ax2.set_title("per position")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


@hookimpl
def register_tools(register):
    register(inspect, example="/inspect distilgpt2-arch",
             phrases=['inspect', 'modules', 'module tree', 'architecture', 'layers of', 'inside'])

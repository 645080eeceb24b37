"""/next: the next-token distribution, and what temperature, top-k and top-p do to it.

One forward pass of the prompt; the last position's logits go through transformers' own
warpers in generate's order (temperature, then top-k, then top-p), and each stage is drawn.
"""

from __future__ import annotations

from typing import Annotated

from tutor import Arg, Reply, Table, Text, hookimpl
from tutor.generation import causal_lm, encode_prompt, forward, sampling_from_options

DEFAULT_MODEL = "smollm2-135m"
SHOWN = 15  # tokens drawn, the most likely under the raw softmax


def next_token(ctx,
               model: Annotated[str | None, Arg(f"a text-generating model; {DEFAULT_MODEL} when left out",
                                                choices="models")] = None,
               prompt: Annotated[Text, Arg("the text whose next token we look at")] = "",
               *,
               temperature: Annotated[float | None, Arg("divide the logits by T before softmax (default 1)")] = None,
               top_k: Annotated[int | None, Arg("keep only the K most likely tokens")] = None,
               top_p: Annotated[float | None, Arg("keep the most likely tokens until their total reaches P")] = None,
               chat: Annotated[bool, Arg("wrap the prompt in the model's chat template")] = False):
    """Show the model's next-token probabilities for PROMPT, before and after the sampling controls.

    Four panels: the raw softmax, after --temperature, after --top-k, after --top-p. Removed tokens
    are grey, the cut-off is a dashed line, the mass removed is in each title, and the greedy pick
    (the most likely token) is outlined. Change a control and run it again to compare.
    """
    import torch

    _, notes = sampling_from_options(False, temperature, top_k, top_p)  # checks the controls
    model_id = causal_lm(ctx.tutor, model or DEFAULT_MODEL).id
    with ctx.model(model_id) as lm:
        prompt_obj = encode_prompt(lm, prompt, chat)
        ids = torch.tensor([prompt_obj.ids], device=lm.device)
        logits, _ = forward(lm.model, ids, torch.ones_like(ids))
        tok = lm.tokenizer
    stages = distributions(logits.float().cpu(), temperature, top_k, top_p)
    raw = stages[0][1]
    shown = raw.topk(SHOWN).indices.tolist()
    greedy = int(raw.argmax())
    label = {i: repr(tok.decode([i])) for i in shown}
    removed = {name: mass for name, _, mass in stages[2:]}
    kept = {name: int((p > 0).sum()) for name, p, _ in stages[2:]}
    rows = [[label[i], i] + [f"{float(p[i]):.2%}" for _, p, _ in stages] for i in shown]
    lines = [f"**{model_id}**: what comes after the prompt ({len(prompt_obj.ids)} token{'' if len(prompt_obj.ids) == 1 else 's'})? The greedy pick is "
             f"**{tok.decode([greedy])!r}** (id {greedy}, {float(raw[greedy]):.1%}).", *notes, *prompt_obj.notes]
    if top_k:
        lines.append(f"top-k {top_k} keeps {kept['top-k']} tokens and removes {removed['top-k']:.1%} of the "
                     "probability; the rest is renormalised to add up to 1.")
    if top_p is not None and top_p < 1:
        lines.append(f"top-p {top_p:g} keeps the {kept['top-p']} most likely tokens whose probabilities reach "
                     f"{top_p:g}, removing {removed['top-p']:.1%} more.")
    return Reply(
        text="\n\n".join(lines),
        figure=_figure(stages, shown, label, greedy, temperature, top_k, top_p),
        table=Table(["token", "id", *[name for name, _, _ in stages]], rows),
        buttons=[f"/next --temperature {t} {prompt}" for t in (0.5, 1.5) if t != temperature][:2]
        if prompt and "\n" not in prompt and len(prompt) < 200 else [],
        data={"model": model_id, "prompt_ids": prompt_obj.ids, "temperature": temperature, "top_k": top_k,
              "top_p": top_p, "greedy": {"id": greedy, "token": tok.decode([greedy]), "p": float(raw[greedy])},
              "removed_mass": removed, "kept": kept, "vocab_size": int(raw.numel()),
              "tokens": [{"id": i, "token": tok.decode([i]),
                          **{name: float(p[i]) for name, p, _ in stages}} for i in shown]})


def distributions(logits, temperature: float | None, top_k: int | None, top_p: float | None):
    """[(stage, probabilities over the vocabulary, mass that stage removed)] for raw, temperature,
    top-k, top-p: each stage is transformers' warper applied to the previous stage's scores.

    Temperature 0 is greedy: all the probability on the most likely token.
    """
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    def probs(scores):
        return torch.softmax(scores, dim=-1)[0]

    scores = logits.float()  # (1, vocab)
    out = [("raw", probs(scores), 0.0)]
    if temperature == 0:
        scores = torch.full_like(scores, float("-inf"))
        scores[0, int(logits.argmax())] = 0.0
    elif temperature is not None and temperature != 1:
        scores = TemperatureLogitsWarper(temperature)(None, scores)
    out.append(("temperature", probs(scores), 0.0))
    for name, warper in (("top-k", TopKLogitsWarper(top_k) if top_k else None),
                         ("top-p", TopPLogitsWarper(top_p) if top_p is not None and top_p < 1 else None)):
        before = out[-1][1]
        if warper is not None:
            scores = warper(None, scores)
        p = probs(scores)
        out.append((name, p, float(before[p == 0].sum())))
    return out


def _figure(stages, shown, label, greedy, temperature, top_k, top_p):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 8.5), layout="constrained")
    axes = fig.subplots(len(stages), 1, sharex=True)
    xs = range(len(shown))
    titles = {"raw": "raw softmax of the logits",
              "temperature": "after temperature " + ("(off: T = 1)" if temperature is None else
                                                     "0 (greedy)" if temperature == 0 else f"{temperature:g}"),
              "top-k": "after top-k " + (f"{top_k}" if top_k else "(off)"),
              "top-p": "after top-p " + (f"{top_p:g}" if top_p is not None and top_p < 1 else "(off)")}
    before_cuts = stages[1][1]  # after temperature, before any token is removed
    for ax, (name, p, removed) in zip(axes, stages):
        heights = [float(p[i]) for i in shown]
        # a removed token is drawn grey and hatched at the probability it had before the cuts
        drawn = [h if h > 0 else float(before_cuts[i]) for h, i in zip(heights, shown)]
        bars = ax.bar(xs, drawn, color=["#2563eb" if h > 0 else "#e5e7eb" for h in heights])
        for bar, i, h in zip(bars, shown, heights):
            if h == 0:
                bar.set_hatch("//")
                bar.set_edgecolor("#9ca3af")
            if i == greedy:
                bar.set_edgecolor("#dc2626")
                bar.set_linewidth(2.5)
        cut = sum(1 for h in heights if h > 0)
        if 0 < cut < len(shown) and name in ("top-k", "top-p"):
            ax.axvline(cut - 0.5, color="#dc2626", linestyle="--", linewidth=1)
        extra = f" — removed {removed:.1%} of the mass, rest renormalised" if removed else ""
        ax.set_title(titles[name] + extra, fontsize=10, loc="left")
        ax.set_ylabel("p")
        ax.set_ylim(0, max(max(drawn), 0.01) * 1.15)
    axes[-1].set_xticks(list(xs), [label[i].replace("\\n", "↵") for i in shown], rotation=60, fontsize=8)
    fig.suptitle("next-token probabilities (red outline: the greedy pick; grey hatched: removed, drawn at its probability before the cut)", fontsize=10)
    return fig


@hookimpl
def register_tools(register):
    register(next_token, name="next", example="/next --temperature 0.7 --top-k 5 The cat sat on the",
             phrases=['next token', 'next tokens', 'next word', 'comes next', 'likely next', 'next-token', 'follows', 'comes after'])

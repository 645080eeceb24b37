"""/generate: the decoding loop made visible — tokens stream in, coloured by how likely they were.

Runs on the shared batching decoder (tutor/generation.py): several learners generating on one
model are stepped together in one batched forward pass per token. With TUTOR_GENERATION_URL set,
the default model's streams come from that OpenAI-compatible server instead (tutor/remote.py),
with each token's probability and alternatives where the server sends logprobs. `--step` is the
manual loop: one token per call, the whole sequence re-read each time, as you would write it by
hand; it (like /next) stays local, because it shows the full distribution at each step.
"""

from __future__ import annotations

from typing import Annotated

from tutor import Arg, Reply, Span, Table, Text, ToolError, hookimpl
from tutor.anatomy import context_limit
from tutor.remote import Finish, Server
from tutor.generation import (Sampling, Step, causal_lm, choose, decoder_for, encode_prompt,
                              forward, sampling_from_options, stop_ids)

DEFAULT_MODEL = "smollm2-135m"
# Span colour groups (tutor/web/render.py PALETTE_SIZE) by probability of the chosen token, most sure first.
BANDS = [(0.9, 2, "green ≥ 90%"), (0.5, 1, "blue 50–90%"), (0.2, 0, "yellow 20–50%"),
         (0.05, 5, "orange 5–20%"), (0.0, 3, "pink < 5%")]
LEGEND = ("Colour = probability of each token when it was chosen: " + ", ".join(b[2] for b in BANDS)
          + ". Hover a token for the alternatives.")


def generate(ctx,
             model: Annotated[str | None, Arg(f"a text-generating model; {DEFAULT_MODEL} when left out",
                                              choices="models")] = None,
             prompt: Annotated[Text, Arg("the text to continue; empty starts from the beginning-of-text token")] = "",
             *,
             max_tokens: Annotated[int, Arg("most new tokens (at most the max_new_tokens setting)")] = 64,
             greedy: Annotated[bool, Arg("always take the most likely token instead of sampling")] = False,
             temperature: Annotated[float | None, Arg("logits are divided by T before sampling (0.7 sharper, 1.5 wilder)")] = None,
             top_k: Annotated[int | None, Arg("sample only among the K most likely tokens")] = None,
             top_p: Annotated[float | None, Arg("sample among the most likely tokens whose total reaches P")] = None,
             repetition_penalty: Annotated[float | None, Arg("above 1 makes tokens already in the text less likely")] = None,
             seed: Annotated[int | None, Arg("seed for sampling: the same seed repeats the same text")] = None,
             chat: Annotated[bool, Arg("wrap the prompt in the model's chat template")] = False,
             step: Annotated[bool, Arg("one token per call: the manual loop, step by step")] = False):
    """Continue PROMPT with a language model, token by token, and show how sure it was of each.

    Each token is drawn from the model's probabilities (shaped by --temperature, --top-k, --top-p;
    --seed repeats a draw), or with --greedy the most likely token is always taken. Generation
    stops at the model's end-of-text token or at --max-tokens, and says which. `--chat` wraps the
    prompt in the model's chat template. `--step` runs the loop by hand, greedy unless a sampling
    control is given: each call adds one token and shows the ids, the top logits and the choice;
    `/generate --step` with no prompt takes the next step.
    """
    # the manual loop is argmax by default, as written by hand; /generate samples unless --greedy
    sampling, notes = sampling_from_options(greedy, temperature, top_k, top_p, repetition_penalty, seed,
                                            default_greedy=step)
    if step:
        return _manual_step(ctx, model, prompt, chat, sampling, notes,
                            options_given=greedy or any(v is not None for v in (temperature, top_k, top_p,
                                                                                repetition_penalty, seed)))
    server = Server.for_generation(ctx.settings)
    if server is not None and (model or DEFAULT_MODEL) == DEFAULT_MODEL:
        return _remote_stream(ctx, server, prompt, max_tokens, chat, sampling, notes)
    return _stream(ctx, causal_lm(ctx.tutor, model or DEFAULT_MODEL).id, prompt, max_tokens, chat, sampling, notes)


def _check_max_tokens(ctx, max_tokens: int) -> None:
    limit = ctx.settings.max_new_tokens
    if max_tokens < 1:
        raise ToolError(f"--max-tokens must be at least 1, but got {max_tokens}. Try --max-tokens 50.")
    if max_tokens > limit:
        raise ToolError(f"--max-tokens {max_tokens} is over this tutor's limit of {limit} new tokens per "
                        f"request (so one learner cannot hold the model for long). Ask for {limit} or fewer; "
                        "whoever runs the tutor can raise TUTOR_MAX_NEW_TOKENS.")


# ---- streaming generation ---------------------------------------------------------------------

def _stream(ctx, model_id: str, text: str, max_tokens: int, chat: bool, sampling: Sampling, notes: list[str]):
    _check_max_tokens(ctx, max_tokens)
    with ctx.model(model_id) as lm:  # only to read the tokenizer and config; the decoder steps the model
        prompt = encode_prompt(lm, text, chat)
        notes = notes + prompt.notes
        tok, stops, window = lm.tokenizer, stop_ids(lm), context_limit(lm.model.config)
    limit, limit_reason = max_tokens, "max_tokens"
    if window is not None and len(prompt.ids) + max_tokens > window:
        limit, limit_reason = window - len(prompt.ids), "context"
        notes.append(f"Only {limit} new tokens fit in the context window of {window:,} positions.")
    return _run_stream(ctx, model_id, tok, prompt, limit, limit_reason, stops, sampling, notes)


def _run_stream(ctx, model_id, tok, prompt, limit, limit_reason, stops, sampling, notes):
    """A generator: one done=False Reply per token, the full Reply last."""
    stream = decoder_for(ctx.tutor, model_id).submit(prompt.ids, limit, sampling, stops, limit_reason)
    header = f"**{model_id}** · {sampling.describe()}"
    steps: list[Step] = []
    spans: list[Span] = []  # built once per token; each streamed Reply carries a copy of the list
    try:
        for s in stream.steps(ctx.cancel):
            steps.append(s)
            spans.append(_span(tok, s, tok.decode([s.id]), stops))
            yield Reply(text=f"{header} · writing… {len(steps)}/{limit}", spans=list(spans),
                        progress=len(steps) / limit, done=False)
    finally:
        stream.cancel()  # no-op when finished; frees the batch row when the reader went away
    yield _final(model_id, tok, prompt, steps, spans, stream.stop_reason, limit, sampling, header, notes)


# ---- generation on an OpenAI-compatible server ------------------------------------------------

def _remote_stream(ctx, server: Server, text: str, max_tokens: int, chat: bool, sampling: Sampling,
                   notes: list[str]):
    _check_max_tokens(ctx, max_tokens)  # before the stream starts, as the local path does
    return _remote_replies(ctx, server, text, max_tokens, chat, sampling, notes)


def _remote_replies(ctx, server: Server, text: str, max_tokens: int, chat: bool, sampling: Sampling,
                    notes: list[str]):
    """The same stream from TUTOR_GENERATION_URL: one done=False Reply per token, the full one last."""
    options = {"temperature": 0.0} if sampling.greedy else {
        "temperature": sampling.temperature, "top_p": sampling.top_p, "seed": sampling.seed}
    extra = {k: v for k, v, neutral in (("top_k", sampling.top_k, None),
                                         ("repetition_penalty", sampling.repetition_penalty, 1.0))
             if v is not None and v != neutral}
    if extra:  # not in OpenAI's schema; vLLM and SGLang read them from the body
        options["extra_body"] = extra
    pieces = (server.chat([{"role": "user", "content": text}], max_tokens, **options) if chat else
              server.complete(text, max_tokens, **options))
    header = f"**{server.model}** on {server.url} · {sampling.describe()}"
    spans, steps, reason = [], [], None
    try:
        for piece in pieces:
            if isinstance(piece, Finish):
                reason = {"stop": "eos", "length": "max_tokens"}.get(piece.reason, piece.reason)
                continue
            if ctx.cancel.is_set():
                reason = "stopped"
                break
            steps.append({"text": piece.text, "p": piece.p, "top": [list(t) for t in piece.top]})
            spans.append(_remote_span(piece))
            yield Reply(text=f"{header} · writing… {len(steps)}/{max_tokens}", spans=list(spans),
                        progress=min(1.0, len(steps) / max_tokens), done=False)
    finally:
        pieces.close()  # ends the request on the server when the learner stops or leaves
    written = "".join(s["text"] for s in steps)
    why = {"eos": "stopped: the model ended its text", "max_tokens": f"stopped: reached --max-tokens ({max_tokens})",
           "stopped": "stopped by you (Stop button)"}.get(reason or "stopped", f"stopped: {reason}")
    lines = [f"{header} · {len(steps)} pieces, {why}.", *notes,
             "Generated on an inference server (TUTOR_GENERATION_URL); `/generate --step` and `/next` run "
             "here, on this machine's copy, because they show the whole distribution at every step."]
    if steps and all(s["p"] is None for s in steps):
        lines.append("This server sent no token probabilities (logprobs), so the text is not coloured by "
                     "confidence; vLLM and SGLang send them.")
    else:
        lines.append(LEGEND)
    lines.append(("Chat template applied by the server. " if chat else "") + "The prompt, then what the model wrote:\n"
                 + _fence(("" if chat else text) + written))
    yield Reply(text="\n\n".join(lines), spans=spans,
                data={"model": server.model, "server": server.url, "text": written, "stop_reason": reason,
                      "sampling": vars(sampling).copy(), "steps": steps})


def _remote_span(piece) -> Span:
    if piece.p is None:
        return Span(piece.text, None, 4, "the server sent no probabilities")
    alts = ", ".join(f"{t!r} {q:.1%}" for t, q in piece.top)
    return Span(piece.text, None, _band(piece.p), f"p {piece.p:.1%} · top: {alts}")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _band(p: float) -> int:
    return next(group for floor, group, _ in BANDS if p >= floor)


def _show(tok, token_id: int) -> str:
    return repr(tok.decode([token_id]))


def _span(tok, step: Step, piece: str, stops: set[int]) -> Span:
    alts = ", ".join(f"{_show(tok, i)} {p:.1%}" for i, p in step.top)
    return Span(piece, step.id, _band(step.p), f"id {step.id} · p {step.p:.1%} · top: {alts}",
                special=step.id in stops)


def _final(model_id, tok, prompt, steps, spans, stop_reason, limit, sampling, header, notes) -> Reply:
    ids = [s.id for s in steps]
    body = ids[:-1] if stop_reason == "eos" else ids  # the end-of-text token is not part of the text
    text = tok.decode(body, skip_special_tokens=False)
    why = {"eos": f"stopped: the model wrote its end-of-text token {_show(tok, ids[-1]) if ids else ''}",
           "max_tokens": f"stopped: reached --max-tokens ({limit})",
           "context": f"stopped: the context window is full ({len(prompt.ids) + len(ids):,} positions)",
           "stopped": "stopped by you (Stop button)"}[stop_reason or "stopped"]
    lines = [f"{header} · {len(ids)} new token{'s' * (len(ids) != 1)}, {why}.", *notes]
    if prompt.templated is not None:
        specials = sorted({i for i in prompt.ids if i in set(tok.all_special_ids)})
        lines.append("Chat template applied. The model reads this (special tokens "
                     + ", ".join(f"`{tok.convert_ids_to_tokens(i)}` = {i}" for i in specials) + "):\n"
                     + _fence(prompt.templated))
    else:
        lines.append(f"The prompt ({_n(len(prompt.ids), 'token')}), then what the model wrote:\n"
                     + _fence(tok.decode(prompt.ids) + text))
    lines.append(LEGEND)
    rows = [[n + 1, _show(tok, s.id), s.id, f"{s.p:.1%}",
             ", ".join(f"{_show(tok, i)} {p:.0%}" for i, p in s.top[1:4] if i != s.id)]
            for n, s in enumerate(steps)]
    return Reply(text="\n\n".join(lines),
                 spans=spans,
                 table=Table(["step", "token", "id", "p", "next best"], rows) if rows else None,
                 data={"model": model_id, "prompt_ids": prompt.ids, "ids": ids, "text": text,
                       "stop_reason": stop_reason, "sampling": vars(sampling).copy(),
                       "templated_prompt": prompt.templated,
                       "steps": [{"id": s.id, "p": s.p, "p_model": s.p_model, "top": [list(t) for t in s.top]}
                                 for s in steps]})


def _ids_text(ids: list[int], most: int = 40) -> str:
    return str(ids) if len(ids) <= most else f"[{ids[0]}, … {len(ids) - most + 1} more …, {str(ids[-most + 1:])[1:]}"


def _fence(text: str) -> str:
    """A fenced block that survives backticks inside the text."""
    longest, current = 0, 0
    for ch in text:
        current = current + 1 if ch == "`" else 0
        longest = max(longest, current)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


# ---- the manual loop: one token per call ----------------------------------------------------------

def _manual_step(ctx, model, text, chat, sampling, notes, options_given: bool) -> Reply:
    import torch

    state = ctx.state("generate-step")
    if text or chat or (model and model != state.get("model")) or not state:
        if not (text or chat or model):
            raise ToolError("Start the manual loop with a prompt, e.g. `/generate --step The cat sat on the`; "
                            "then `/generate --step` adds one token per call.")
        model_id = causal_lm(ctx.tutor, model or DEFAULT_MODEL).id
        state.clear()
        state.update(model=model_id, sampling=sampling, generator=None, stop_reason=None, notes=notes)
        fresh = True
    else:
        fresh = False
        if options_given:  # new controls apply from this step on
            state.update(sampling=sampling, generator=None)
    sampling, model_id = state["sampling"], state["model"]
    if state.get("stop_reason"):
        raise ToolError(f"This loop has finished ({state['stop_reason']}). Start a new one with a prompt: "
                        "`/generate --step The cat sat on the`.")
    with ctx.model(model_id) as lm:
        tok = lm.tokenizer
        if fresh:
            prompt = encode_prompt(lm, text, chat)
            state.update(prompt_ids=prompt.ids, ids=list(prompt.ids), templated=prompt.templated)
            notes = notes + prompt.notes
        ids = state["ids"]
        window = context_limit(lm.model.config)
        if state["generator"] is None and not sampling.greedy:
            state["generator"] = torch.Generator().manual_seed(sampling.seed)
        # the loop by hand: run the model on ALL ids so far (no KV cache) and read the last position
        logits, _ = forward(lm.model, torch.tensor([ids], device=lm.device),
                            torch.ones(1, len(ids), dtype=torch.long, device=lm.device))
        logits = logits.float().cpu()
        step = choose(logits, torch.tensor([ids]), sampling, sampling.processors(), state["generator"])
        stops = stop_ids(lm)
    ids.append(step.id)
    made = len(ids) - len(state["prompt_ids"])
    reason = ("eos" if step.id in stops else "max_tokens" if made >= ctx.settings.max_new_tokens else
              "context" if window is not None and len(ids) >= window else None)
    state["stop_reason"] = reason
    probs = torch.softmax(logits[0], dim=-1)
    top_logits, top_ids = logits[0].topk(10)
    rows = [[r + 1, _show(tok, int(i)), int(i), f"{float(v):.2f}", f"{float(probs[i]):.2%}",
             "◀ chosen" if int(i) == step.id else ""] for r, (v, i) in enumerate(zip(top_logits, top_ids))]
    how = "the most likely token (greedy: argmax of the logits)" if sampling.greedy else \
        f"drawn at random ({sampling.describe()}), probability {step.p:.1%} after the controls"
    so_far = tok.decode(ids[len(state['prompt_ids']):])
    lines = [f"**Step {made}** on **{model_id}**. The model read {len(ids) - 1} ids: `{_ids_text(ids[:-1])}`", *notes,
             f"It picked **{_show(tok, step.id)}** (id {step.id}): {how}.",
             "Text so far (the prompt, then what the loop added):\n"
             + _fence(tok.decode(state["prompt_ids"]) + so_far)]
    if reason == "eos":
        lines.append("That is the end-of-text token, so the loop stops here.")
    elif reason:
        lines.append(f"The loop stops here: {reason.replace('_', ' ')} reached.")
    if fresh:
        lines.append("Each step runs the model on all the ids so far and appends one; `/generate` does the "
                     "same but keeps a KV cache, so it does not re-read the prompt every time.")
    lines.append("The model's top logits for the next position (p = softmax of the logits):")
    return Reply(text="\n\n".join(lines), table=Table(["rank", "token", "id", "logit", "p", ""], rows),
                 buttons=[] if reason else ["/generate --step"],
                 data={"model": model_id, "step": made, "prompt_ids": state["prompt_ids"], "ids": list(ids),
                       "chosen": step.id, "p": step.p, "text": so_far, "stop_reason": reason,
                       "top": [[int(i), float(v), float(probs[i])] for v, i in zip(top_logits, top_ids)]})


@hookimpl
def register_tools(register):
    register(generate, example="/generate --greedy --max-tokens 30 The cat sat on the",
             phrases=['generate', 'continue', 'complete', '~write'])

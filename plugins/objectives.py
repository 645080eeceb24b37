"""/objectives: three ways to turn raw text into training examples, shown on the learner's text.

- causal (GPT-2, SmolLM2): every position predicts the next token; n tokens give n - 1 examples.
- masked (BERT, MiniLM): hide some tokens behind [MASK] and predict them from both sides.
- span (T5): replace random spans by sentinels <extra_id_0>, <extra_id_1>, ...; the target
  lists each sentinel followed by the words it hid.

    /objectives causal The cat sat on the mat
    /objectives masked --model minilm-l6 --mask sat The cat sat on the mat
    /objectives span The quick brown fox jumps over the lazy dog
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl


NOISE_DENSITY, MEAN_SPAN = 0.15, 3.0  # T5's defaults (Raffel et al., 2020, section 3.1.4)


def causal_pairs(ids: list[int]) -> list[tuple[list[int], int]]:
    """(context, target) for every position: [5, 6, 7] -> [([5], 6), ([5, 6], 7)]."""
    return [(ids[:i], ids[i]) for i in range(1, len(ids))]


def span_corrupt(words: list[str], seed: int = 0) -> tuple[list[str], list[str], list[list[str]]]:
    """T5's span corruption on words: (input, target, the hidden spans).

    About NOISE_DENSITY of the words are hidden, in spans of MEAN_SPAN words on average; each
    span becomes one sentinel in the input, and the target is sentinel + hidden words, in order.
    >>> span_corrupt("a b c d e f g h i j k l m n o p q r s t".split(), seed=0)[0][:3]
    ['a', 'b', 'c']
    """
    n = len(words)
    noise = max(1, round(n * NOISE_DENSITY))
    spans = max(1, round(noise / MEAN_SPAN))
    rng = random.Random(seed)
    lengths = _split(noise, spans, rng)  # hidden span lengths
    gaps = _split(n - noise, spans, rng) if n - noise >= spans else [n - noise] + [0] * (spans - 1)
    inp, tgt, hidden, pos = [], [], [], 0
    for k, (gap, length) in enumerate(zip(gaps, lengths)):
        inp += words[pos:pos + gap]
        pos += gap
        span = words[pos:pos + length]
        pos += length
        inp.append(f"<extra_id_{k}>")
        tgt += [f"<extra_id_{k}>", *span]
        hidden.append(span)
    inp += words[pos:]
    tgt.append(f"<extra_id_{spans}>")  # T5's target ends with one more sentinel
    return inp, tgt, hidden


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive integers at random (T5's _random_segmentation)."""
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges, edges[1:])]


def objectives(ctx, objective: Annotated[Literal["causal", "masked", "span"], Arg("which training objective")],
               text: Text = "", *,
               mask: Annotated[str | None, Arg("masked: the word to hide (default: the middle word)")] = None,
               model: Annotated[Literal["minilm-l6"], Arg("masked: the encoder to run (the offline BERT)")] = "minilm-l6",
               seed: Annotated[int, Arg("span: the random seed for which spans are hidden", min=0)] = 0) -> Reply:
    """Show how one text becomes training examples: causal (GPT), masked (BERT) or span corruption (T5)."""
    text = text.strip()
    if not text:
        raise ToolError(f"Give a text, e.g. `/objectives {objective} The cat sat on the mat`.")
    if objective == "causal":
        return _causal(ctx, text)
    if objective == "masked":
        return _masked(ctx, text, mask, model)
    return _span(text, seed)


def _causal(ctx, text: str) -> Reply:
    tok = ctx.tokenizer("gpt2")
    ids = tok.encode(text)[:64]
    pairs = causal_pairs(ids)
    rows = [[k + 1, repr(tok.decode(c)), repr(tok.decode([t]))] for k, (c, t) in enumerate(pairs)]
    return Reply(text=f"**Causal language modelling** (GPT-2, SmolLM2): {len(ids)} GPT-2 tokens give "
                      f"**{len(pairs)} training examples** from one forward pass: at each position the model "
                      "predicts the next token from the ones before it (the causal mask hides the rest). No "
                      "labels are written by anyone: the text is its own answer key.",
                 table=Table(["example", "context (what the model sees)", "target (next token)"], rows),
                 data={"objective": "causal", "tokenizer": "gpt2", "ids": ids, "examples": len(pairs),
                       "targets": [t for _, t in pairs]})


def _mlm_head(folder: Any) -> tuple[bool, list[str]]:
    """Does the checkpoint hold BERT's masked-LM head (cls.predictions.*)? And its weight groups."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    return any(k.startswith("cls.predictions") for k in keys), sorted({k.split(".")[0] for k in keys})


def _masked(ctx, text: str, word: str | None, model: str) -> Reply:
    import torch

    from tutor.assets import minilm_folder

    words = text.split()
    word = word or words[len(words) // 2]
    if word not in words:
        raise ToolError(f"--mask {word!r} is not a word of the text; choose one of: {', '.join(words[:12])}.")
    i = words.index(word)
    masked = " ".join(words[:i] + ["[MASK]"] + words[i + 1:])
    changed = " ".join(words[:i] + ["[MASK]"] + words[i + 1:-1] + ["banana"]) if i < len(words) - 1 else None
    has_head, groups = _mlm_head(minilm_folder(ctx.settings.assets))
    with ctx.model(model) as lm:
        enc = lm.tokenizer(masked, return_tensors="pt").to(lm.device)
        tokens = lm.tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
        where = tokens.index("[MASK]")
        with torch.inference_mode():
            out = lm.model(**enc).last_hidden_state[0].float()
            right = None
            if changed:  # change the LAST word: does the [MASK] position's vector change? (it sees both sides)
                enc2 = lm.tokenizer(changed, return_tensors="pt").to(lm.device)
                out2 = lm.model(**enc2).last_hidden_state[0].float()
                right = float(torch.nn.functional.cosine_similarity(out[where], out2[where], dim=0))
    lines = [f"**Masked language modelling** (BERT): hide {word!r} behind `[MASK]` and train the model to "
             f"predict it from the words on **both** sides: `{masked}`. BERT masked 15% of its tokens this way.",
             ("The MiniLM checkpoint here has BERT's masked-LM head, so it could fill the mask." if has_head else
              f"**Fill-mask cannot run here**: all-MiniLM-L6-v2's checkpoint holds only {', '.join(groups)}; "
              "its masked-LM head (`cls.predictions`) was dropped when it was trained further as a sentence "
              "encoder. What the encoder gives instead is one vector per token:"),
             f"{len(tokens)} tokens in, {out.shape[0]} vectors of {out.shape[1]} out; `[MASK]` is position {where}."]
    if right is not None:
        lines.append(f"Change only the last word (to 'banana') and the `[MASK]` position's vector changes too "
                     f"(cosine {right:.3f} with the first, not 1): an encoder reads the words to the right. "
                     "A causal model's vector at that position could not change.")
    return Reply(text="\n\n".join(lines),
                 data={"objective": "masked", "masked_text": masked, "tokens": tokens, "mask_position": where,
                       "has_mlm_head": has_head, "weight_groups": groups, "vectors": out.shape[0],
                       "width": out.shape[1], "mask_cosine_after_changing_last_word": right})


def _span(text: str, seed: int) -> Reply:
    words = text.split()
    if len(words) < 4:
        raise ToolError("Give at least 4 words: span corruption hides about 15% of them.")
    inp, tgt, hidden = span_corrupt(words, seed)
    hidden_n = sum(len(s) for s in hidden)
    return Reply(text="**Span corruption** (T5, Raffel et al., 2020): about 15% of the words are hidden in spans "
                      "of 3 on average; each span becomes one sentinel in the input, and the target lists each "
                      "sentinel with the words it hid.\n\n"
                      f"Input: `{' '.join(inp)}`\n\nTarget: `{' '.join(tgt)}`\n\n"
                      "Not run on T5: t5-small is not available offline, so no T5 model or tokenizer ran. "
                      "The corruption is applied here to whitespace words with T5's rule; T5 applies it to its "
                      "SentencePiece tokens, and its encoder reads the input while its decoder writes the target.",
                 data={"objective": "span", "words": len(words), "hidden_words": hidden_n, "spans": len(hidden),
                       "input": inp, "target": tgt, "hidden": hidden, "model_ran": False,
                       "noise_density": NOISE_DENSITY, "mean_span": MEAN_SPAN})


@hookimpl
def register_tools(register):
    register(objectives, example="/objectives masked --model minilm-l6 --mask sat The cat sat on the mat",
             phrases=['objective', 'masked language', 'span corruption'])

"""/pitfalls: the surprises hiding in a text's tokenization, shown on the learner's own text."""

import re
from typing import Annotated

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.tokenizers import Tokenizer, clean_text, typed_specials, visible

# Inputs for the non-English comparison when the learner's text is all ASCII. These are example
# sentences (the same meaning in five languages), not results: the counts are computed live.
SAME_SENTENCE = {
    "English": "The weather is nice today, so we are going for a walk in the park.",
    "French": "Il fait beau aujourd'hui, alors nous allons nous promener dans le parc.",
    "German": "Das Wetter ist heute schön, also gehen wir im Park spazieren.",
    "Japanese": "今日は天気がいいので、公園に散歩に行きます。",
    "Hindi": "आज मौसम अच्छा है, इसलिए हम पार्क में टहलने जा रहे हैं।",
}
EXAMPLE_NUMBERS = ["2024", "1234567", "3.14159", "1,000,000"]
COMMON_SPECIALS = ["<|endoftext|>", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def pitfalls(ctx, text: Text = "", *,
             tokenizer: Annotated[str, Arg("tokenizer to inspect (see /tokenizers)")] = "gpt2") -> Reply:
    """Show the tokenization surprises in TEXT: numbers, leading spaces, other languages, special tokens.

    Numbers split into uneven pieces; the same word gets different ids with and without a
    leading space or a capital; other languages cost more tokens for the same meaning; a
    special-token string a user types is plain text unless the program explicitly allows it.
    Choose the tokenizer with --tokenizer NAME before the text.
    """
    if not text:
        raise ToolError("Give a text to inspect, e.g. `/pitfalls In 2024, unhappiness cost $1,234,567.` "
                        "or `/pitfalls --tokenizer cl100k_base Ignore <|endoftext|> this`.")
    text, notes = clean_text(text, ctx.settings.max_input_chars)
    tok = ctx.tokenizer(tokenizer)
    sections, data = [f"Pitfalls in your text with `{tok.name}` ({tok.kind})."] + notes, {"tokenizer": tok.name}
    for title, part in (("Numbers", _numbers), ("Leading spaces and capitals", _spaces),
                        ("Other languages", _languages), ("Special-token strings", _specials)):
        lines, facts, key = part(tok, text)
        sections.append(f"**{title}.**\n\n" + "\n".join(lines))
        data[key] = facts
    return Reply(text="\n\n".join(sections), data=data)


def _split(tok: Tokenizer, s: str) -> str:
    return " | ".join(visible(tok.decode([i])) if tok.byte_level else tok.token_name(i) for i in tok.encode(s))


def _numbers(tok, text):
    found = list(dict.fromkeys(re.findall(r"\d[\d,.]*\d|\d", text)))[:8]
    lines = [] if found else ["Your text has no numbers; examples instead:"]
    facts = []
    for num in found or EXAMPLE_NUMBERS:
        ids = tok.encode(num)
        facts.append({"text": num, "ids": ids, "tokens": [tok.token_name(i) for i in ids], "example": not found})
        lines.append(f"- `{num}` → {len(ids)} token{'s' * (len(ids) != 1)}: `{_split(tok, num)}`")
    lines.append("A model sees these pieces, not digits with place values, which is one reason arithmetic "
                 "is hard for it.")
    return lines, facts, "numbers"


def _spaces(tok, text):
    words = list(dict.fromkeys(w for w in re.findall(r"[^\W\d_]{2,}", text)))[:6] or ["hello"]
    lines, facts = [], []
    for word in words:
        variants = {v: tok.encode(v) for v in (word, " " + word, word.capitalize(), " " + word.capitalize())}
        facts.append({"word": word, "ids": variants})
        shown = "; ".join(f"`{visible(v)}` → {ids}" for v, ids in variants.items())
        lines.append(f"- {shown}")
    if any(len({tuple(ids) for ids in f["ids"].values()}) > 1 for f in facts):
        lines.append("The same word with and without a leading space (or a capital) has different ids: "
                     "to the model they are different tokens.")
    else:
        lines.append("This tokenizer drops spaces (and, being uncased, capitals) before splitting, so the "
                     "variants share ids.")
    return lines, facts, "leading_space"


def _languages(tok, text):
    if any(ord(c) > 127 for c in text):
        words = text.split()
        rows = {"your ASCII-only words": " ".join(w for w in words if w.isascii()),
                "your words with other characters": " ".join(w for w in words if not w.isascii())}
    else:
        rows = dict(SAME_SENTENCE)
    facts, lines = [], []
    base = None
    for label, sample in rows.items():
        if not sample:
            continue
        n = tok.count(sample)
        base = base or n
        facts.append({"label": label, "text": sample, "tokens": n, "characters": len(sample),
                      "chars_per_token": len(sample) / max(n, 1)})
        lines.append(f"- {label}: {n} tokens for {len(sample)} characters "
                     f"({len(sample) / max(n, 1):.2f} chars/token)" + (f", ×{n / base:.2f} the first" if n != base else ""))
    head = ("The same sentence in five languages (example inputs; counts computed now):" if "English" in rows
            else "Your text's words, ASCII-only and not:")
    lines.insert(0, head)
    lines.append("Text in scripts the tokenizer saw less of in training splits into more, shorter tokens: "
                 "it costs more and fills the context window sooner.")
    return lines, facts, "languages"


def _specials(tok, text):
    typed = typed_specials(tok, text) or [s for s in COMMON_SPECIALS if s in text]
    sample = text if typed else "Hello<|endoftext|>world"
    typed = typed or ["<|endoftext|>"]
    plain, allowed = tok.encode(sample), tok.encode_allowing_specials(sample)
    lines = [] if typed[0] in text else ["Your text has no special-token string; an example instead:"]
    lines.append(f"`{visible(sample[:80])}` as plain text: {len(plain)} tokens; with special tokens allowed: "
                 f"{len(allowed)} tokens" + (f" (the special ids {[i for i in allowed if tok.is_special(i)]})."
                                             if any(tok.is_special(i) for i in allowed) else "."))
    lines.append("A program must never let user text become a special token (it could end a document or fake "
                 "a chat turn); tiktoken's encode() even refuses such text unless told what to allow.")
    return lines, {"typed": typed, "example": typed[0] not in text, "plain_ids": plain[:200],
                   "allowed_ids": allowed[:200]}, "specials"


@hookimpl
def register_tools(register):
    register(pitfalls, example="/pitfalls In 2024 the unhappiness index rose to 1,234,567.")

"""/tokenize: a text cut into tokens, each coloured with its id, its bytes and its name."""

from typing import Annotated
from weakref import WeakKeyDictionary

import numpy as np

from tutor import Arg, Reply, Span, Table, Text, ToolError, hookimpl
from tutor.tokenizers import clean_text, pieces, typed_specials, visible

MAX_SPANS = 2000  # the page stays responsive; `data` always has every id
MAX_ROWS = 300

# per tokenizer, per id: 1 if the token begins with a UTF-8 continuation byte, 0 if not, -1 not looked up
# yet. Filled as texts bring new ids, so a long text costs one array lookup per token, not one call.
# Threads may fill it at once: every write is the same value, and a lost one is looked up again.
_BEGINS_INSIDE: WeakKeyDictionary = WeakKeyDictionary()
# per tokenizer: (names, known): an object array id -> name and which ids it holds, filled as texts bring them
_NAMES: WeakKeyDictionary = WeakKeyDictionary()


def tokenize(ctx, tokenizer: Annotated[str, Arg("tokenizer name (see /tokenizers), or online a hub id like t5-small")],
             text: Text = "", *,
             specials: Annotated[bool, Arg("add the special tokens the model is fed, e.g. BERT's [CLS] ... [SEP]")] = False,
             ) -> Reply:
    """Cut TEXT into tokens: coloured spans with ids, the bytes of each token, whitespace shown.

    GPT-2-style tokenizers keep a word's leading space inside the token (shown ␣, named 'Ġ' in
    Hugging Face vocabularies); WordPiece marks a word's continuation with ##; SentencePiece
    writes a space as ▁. A token that holds only part of a character's UTF-8 bytes is shown as
    those bytes. Special-token strings you type (like <|endoftext|>) are plain text here.
    Quote a text that is only spaces: /tokenize gpt2 "   ".
    """
    if not text:
        raise ToolError("Give a text to tokenize, e.g. `/tokenize gpt2 unhappiness`. To tokenize only "
                        'spaces, quote them: `/tokenize gpt2 "   "`.')
    text, notes = clean_text(text, ctx.settings.max_input_chars)
    tok = ctx.tokenizer(tokenizer)
    ids = tok.encode_for_model(text) if specials else tok.encode(text)
    id_array = np.asarray(ids, dtype=np.int64)
    table = token_names(tok, id_array)
    distinct = np.flatnonzero(np.bincount(id_array)) if len(id_array) else id_array  # sorted, each once
    names = dict(zip(distinct.tolist(), table[distinct].tolist()))
    if tok.byte_level:  # build pieces only for what is shown; a few more so the last one's bytes are whole
        parts = pieces(tok, text, ids[:MAX_SPANS + 4])[:MAX_SPANS]
        partial = partial_positions(tok, id_array)
    else:  # offsets come from one encoding of the whole text
        parts = pieces(tok, text, ids)
        partial = [i for i, p in enumerate(parts) if p.partial]
    titles: dict[int, str] = {}  # a whole token's title depends on its id alone: texts repeat tokens
    spans = [Span(p.text, p.id, i % 6, _title(p) if p.partial else titles.get(p.id) or titles.setdefault(p.id, _title(p)),
                  p.special) for i, p in enumerate(parts[:MAX_SPANS])]
    rows = [[i, p.id, visible(p.name), p.data.hex(" "), "(special)" if p.special else visible(p.text)]
            for i, p in enumerate(parts[:MAX_ROWS])]
    n = len(ids)
    lines = [f"**{n:,} token{'s' * (n != 1)}** with `{tok.name}` ({tok.kind}, {tok.vocab_size:,} in the vocabulary) "
             f"for {len(text):,} characters, {len(text.encode('utf-8')):,} bytes."]
    lines += notes + _explain(tok, parts, names, partial, text)
    if n > MAX_SPANS or n > MAX_ROWS:
        lines.append(f"Showing the first {min(n, MAX_SPANS):,} tokens coloured and {min(n, MAX_ROWS):,} in the "
                     f"table; all {n:,} ids are in the data.")
    return Reply(text="\n\n".join(lines), spans=spans,
                 table=Table(["#", "id", "token", "bytes (hex)", "text"], rows),
                 data={"tokenizer": tok.name, "ids": ids, "tokens": table[id_array].tolist(), "count": n,
                       "characters": len(text), "partial": partial,
                       "special": np.flatnonzero(np.isin(id_array, list(tok.specials.values()))).tolist()},
                 buttons=[f"/compare {text[:200]}" if "\n" not in text[:200] else "/compare The cat sat on the mat."])


def token_names(tok, ids) -> np.ndarray:
    """An object array id -> name covering `ids` (a NumPy array), each id looked up once per
    tokenizer: /tokenize names every token of a long text, and a text repeats its tokens."""
    names, known = _NAMES.get(tok, (None, None))
    top = int(ids.max()) + 1 if len(ids) else 0
    if names is None or len(names) < top:
        size = max(top, tok.vocab_size)
        grown_names, grown_known = np.full(size, None, dtype=object), np.zeros(size, dtype=bool)
        if names is not None:
            grown_names[:len(names)], grown_known[:len(known)] = names, known
        names, known = grown_names, grown_known
        _NAMES[tok] = (names, known)
    new = np.unique(ids[~known[ids]])
    if len(new):
        names[new] = [tok.token_name(i) for i in new.tolist()]
        known[new] = True
    return names


def partial_positions(tok, ids) -> list[int]:
    """Positions of the byte-level tokens that hold only part of a character. Token k is cut
    from its neighbour exactly when token k, or token k+1, begins with a UTF-8 continuation byte
    (10xxxxxx); a table lookup per token, vectorised: a long text has 50,000 of them.

    partial_positions(gpt2, gpt2.encode("日")) -> [0, 1]: its three bytes are cut in two tokens."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        return []
    table = _BEGINS_INSIDE.get(tok)
    top = int(ids.max()) + 1
    if table is None or len(table) < top:
        grown = np.full(max(top, tok.vocab_size), -1, dtype=np.int8)
        if table is not None:
            grown[:len(table)] = table
        _BEGINS_INSIDE[tok] = table = grown
    new = np.unique(ids[table[ids] < 0])
    if len(new):
        first = [tok.token_bytes(i)[:1] for i in new.tolist()]
        table[new] = [b != b"" and b[0] & 0xC0 == 0x80 for b in first]
    begins_inside = table[ids] == 1
    return np.flatnonzero(begins_inside | np.append(begins_inside[1:], False)).tolist()


def _title(p) -> str:
    title = f"id {p.id} · {p.name!r} · bytes {p.data.hex(' ')}"
    if p.partial:
        title += f" · {p.partial}"
    return title + (" · special token" if p.special else "")


def _explain(tok, parts, names: dict[int, str], partial: list[int], text: str) -> list[str]:
    """One line per thing in this tokenization a learner might wonder about: `parts` are the
    pieces shown, `names` every distinct token of the text, `partial` every cut character's position."""
    out = []
    dropped = sorted({b for b in text.encode("utf-8") if b in tok.missing_bytes}) if tok.missing_bytes else []
    if dropped:
        out.append(f"{tok.name} has no token for the byte{'s' * (len(dropped) > 1)} "
                   f"{', '.join(f'0x{b:02x}' for b in dropped)} in your text, so it silently drops "
                   f"{'them' if len(dropped) > 1 else 'it'}: decoding these ids will not give your text back.")
    shown = [p for p in parts if p.partial]
    if partial:
        example = f": e.g. id {shown[0].id} is {shown[0].partial}" if shown else ""
        out.append(f"{len(partial)} token{'s hold' if len(partial) > 1 else ' holds'} only part of a character's "
                   f"UTF-8 bytes (shown as \\xNN; hover for which character){example}.")
    if tok.byte_level and any(b[:1] == b" " and len(b) > 1 for b in map(tok.token_bytes, names)):
        out.append("A leading space belongs to the token after it (␣word): ' word' and 'word' are different "
                   "tokens with different ids.")
    joined = "\n" + "\n".join(names.values())  # one search over all names, not one per name
    if "\n##" in joined:
        out.append("`##` marks a WordPiece token that continues a word; a token without it starts one.")
    if "▁" in joined:
        out.append("`▁` is SentencePiece's way of writing a space: it starts a word.")
    unknown = [p for p in parts if p.special and p.name in ("[UNK]", "<unk>")]
    if unknown:
        out.append(f"`{unknown[0].name}` stands for text this vocabulary cannot spell (e.g. an emoji in BERT): "
                   "the model sees only 'unknown' there, and decoding cannot bring the text back.")
    if any(p.special and p not in unknown for p in parts):
        out.append("Grey dashed tokens are special tokens the model is fed around your text, not text you typed.")
    if typed_specials(tok, text):
        out.append("Your text contains a special-token string; typed by a user it is plain text, cut into "
                   "ordinary tokens (see /pitfalls).")
    return out


@hookimpl
def register_tools(register):
    register(tokenize, example="/tokenize gpt2 unhappiness",
             phrases=['tokenize', 'tokenise', 'split|break|chop into tokens', 'split', 'tokens of', 'ids of', 'token ids'])

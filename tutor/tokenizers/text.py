"""What tools show of a tokenization: one piece per token (partial UTF-8 bytes named), text a
tokenizer can take, whitespace made visible, typed special tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..tools import ToolError
from .adapters import HFTokenizer, TiktokenTokenizer, Tokenizer


@dataclass
class Piece:
    """One token of a text, ready to show: its id, its name, its bytes and the text it covers."""

    id: int
    name: str  # as the tokenizer names it ('Ġthe', '##ing', '▁the', ' the' for tiktoken)
    data: bytes
    text: str  # the characters it stands for; for a partial UTF-8 piece, its bytes as \xNN
    start: int | None = None  # character offsets in the text, where known
    end: int | None = None
    special: bool = False
    partial: str = ""  # for a piece that is part of a character: "bytes 1-2 of 3 of '日' (U+65E5)"


def pieces(tok: Tokenizer, text: str, ids: list[int]) -> list[Piece]:
    """The pieces of `ids` (an encoding of `text`). Byte-level tokens are placed by their bytes,
    so a token holding part of a character is shown as those bytes, with the character named."""
    if tok.byte_level:
        return _byte_pieces(tok, ids)
    offsets: list[tuple[int, int] | None] = [None] * len(ids)
    if isinstance(tok, HFTokenizer):
        enc = tok.encoding(text, template=len(ids) != len(tok.encode(text)))
        if enc.ids == ids:
            offsets = list(enc.offsets)
    out = []
    for id, span in zip(ids, offsets):
        name, special = tok.token_name(id), tok.is_special(id)
        start, end = span if span and not special else (None, None)
        out.append(Piece(id, name, tok.token_bytes(id), name, start, end, special))
    return out


def _byte_pieces(tok: Tokenizer, ids: list[int]) -> list[Piece]:
    # one lookup per distinct id: a long text repeats its tokens many times. A token whose bytes
    # are whole UTF-8 on their own always covers whole characters (the text is valid UTF-8), so
    # only the others need the byte-by-byte walk below.
    datas: dict[int, bytes] = {}
    whole: dict[int, tuple[str, str, bool] | None] = {}  # id -> (name, text, special) when whole, else None
    special_ids = set(tok.specials.values())
    for i in set(ids):
        datas[i] = data = tok.token_bytes(i)
        try:
            whole[i] = (tok.token_name(i), data.decode("utf-8"), i in special_ids)
        except UnicodeDecodeError:
            whole[i] = None
    full = b"".join(datas[i] for i in ids)
    out, pos, char = [], 0, 0
    for id in ids:
        chunk, same = datas[id], whole[id]
        pos += len(chunk)
        if same is not None:
            name, text, special = same
            out.append(Piece(id, name, chunk, text, char, char + len(text), special))
            char += len(text)
            continue
        out.append(_cut_piece(tok, id, full, pos - len(chunk), pos, id in special_ids))
        char += sum(1 for x in chunk if x & 0xC0 != 0x80)  # characters that start in this token
    return out


def _cut_piece(tok: Tokenizer, id: int, full: bytes, a: int, b: int, special: bool) -> Piece:
    """Token `id`, bytes a..b of `full`, holding part of a character: whole characters as text,
    the cut one as its bytes, named."""
    def starts_char(k: int) -> bool:  # byte k begins a character (it is not 10xxxxxx), or is the end
        return k >= len(full) or full[k] & 0xC0 != 0x80

    shown, cuts = [], []
    c0 = a
    while not starts_char(c0):
        c0 -= 1
    while c0 < b:
        c1 = c0 + 1
        while not starts_char(c1):
            c1 += 1
        x0, x1 = max(c0, a), min(c1, b)  # the part of this character inside the token
        if (x0, x1) == (c0, c1):
            shown.append(full[c0:c1].decode("utf-8", errors="replace"))
        else:
            shown.append("".join(f"\\x{v:02x}" for v in full[x0:x1]))
            char = full[c0:c1].decode("utf-8", errors="replace")
            which = f"bytes {x0 - c0 + 1}-{x1 - c0}" if x1 - x0 > 1 else f"byte {x0 - c0 + 1}"
            cuts.append(f"{which} of the {c1 - c0} of {char!r} (U+{ord(char[0]):04X})")
        c0 = c1
    return Piece(id, tok.token_name(id), full[a:b], "".join(shown), None, None, special, partial="; ".join(cuts))


def clean_text(text: str, limit: int) -> tuple[str, list[str]]:
    """Text a tokenizer can take, and notes on what was changed.

    Lone surrogates (from a file decoded with errors='surrogateescape', or a browser that split
    an emoji) cannot be encoded as UTF-8; they become U+FFFD, and the learner is told."""
    if len(text) > limit:
        raise ToolError(f"That text has {len(text):,} characters; the limit is {limit:,}. Send a shorter "
                        "text, or raise TUTOR_MAX_INPUT_CHARS.")
    notes = []
    try:
        if not text.isascii():  # isascii is O(1) on CPython; ASCII holds no surrogate
            text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # joins valid pairs
        bad = sum(1 for c in fixed if c == "\ufffd") - text.count("\ufffd")
        notes.append(f"Your text had {bad} lone surrogate code point{'s' * (bad != 1)} (invalid UTF-8/UTF-16, "
                     "e.g. from a file with a broken encoding); each was replaced by U+FFFD (�).")
        text = fixed
    return text, notes


def visible(s: str) -> str:
    """Whitespace made visible for terminal tables: space ␣, newline ↵, tab ⇥."""
    return s.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")


def text_to_id(tok: Tokenizer, text: str) -> int | None:
    """The id of the single token whose text is `text`, if there is one (any tokenizer kind)."""
    if isinstance(tok, TiktokenTokenizer):
        return tok.ranks.get(text.encode("utf-8"))
    if not isinstance(tok, HFTokenizer):  # an adapter that cannot look names up: ask the encoder
        ids = tok.encode(text) if text else []
        return ids[0] if len(ids) == 1 and tok.token_bytes(ids[0]) == text.encode("utf-8") else None
    if tok.byte_level:
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        table = bytes_to_unicode()
        return tok.token_id("".join(table[b] for b in text.encode("utf-8")))
    return tok.token_id(text)


_SPECIAL_SHAPES = re.compile(r"<\|[^\s|]{1,40}\|>|\[[A-Z]{2,8}\]|</?s>|<[a-z_]{2,12}>|<unk>|<pad>")


def typed_specials(tok: Tokenizer, text: str) -> list[str]:
    """Special-token strings of `tok` that occur in `text` (typed by a user, or pasted).

    One regex pass for the usual shapes (<|...|>, [CLS], </s>) instead of one scan per special:
    Whisper alone has 1,600 of them."""
    specials = tok.specials
    return list(dict.fromkeys(m for m in _SPECIAL_SHAPES.findall(text) if m in specials))

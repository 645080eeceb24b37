"""The Tokenizer interface, its three adapters, and the spec a plugin registers for each.

- TiktokenTokenizer: tiktoken encodings (r50k_base, cl100k_base, o200k_base, Whisper's);
- HFTokenizer: a Hugging Face `tokenizers.Tokenizer` (GPT-2 rebuilt from the r50k ranks, BERT's
  WordPiece, SmolLM2, SentencePiece models from the hub, tokenizers trained by the toy trainer);
- TransformersTokenizer: any other transformers tokenizer (slow SentencePiece ones).

One rule for all: `encode(text)` treats special-token strings typed by a user as plain text and
adds no template tokens, so counts compare fairly; `encode_for_model(text)` is what the model
itself would be fed ([CLS] ... [SEP] for BERT).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ..settings import Settings


@dataclass(frozen=True)
class Merge:
    """How a BPE token is built: `left` + `right`, merged at priority `rank` (lower merges first)."""

    left: int
    right: int
    rank: int


class Tokenizer:
    """What every tool may ask of a tokenizer."""

    name: str = ""
    kind: str = ""  # "byte-level BPE", "WordPiece", "Unigram", ...
    vocab_size: int = 0
    byte_level: bool = False  # every token is a byte string; decode(encode(x)) == x
    missing_bytes: frozenset[int] = frozenset()  # bytes with no token, dropped by encode

    def encode(self, text: str) -> list[int]:
        """Ids for text; special-token strings typed by a user are plain text."""
        raise NotImplementedError

    def encode_for_model(self, text: str) -> list[int]:
        """Ids as the model is fed them: template specials added ([CLS] ... [SEP]) where it has any."""
        return self.encode(text)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def token_bytes(self, id: int) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""
        raise NotImplementedError

    def token_name(self, id: int) -> str:
        """The token as the tokenizer itself names it: 'Ġthe' in GPT-2's HF vocab, '##ness' in WordPiece.
        (Default, for adapters that only know bytes: the bytes as text, undecodable ones as \\xNN.)"""
        return self.token_bytes(id).decode("utf-8", errors="backslashreplace")

    def token_id(self, name: str) -> int | None:
        """The id of a token given by its name (or, for tiktoken, its text); None if not in the vocab.
        (Default: unknown, for adapters that cannot look names up.)"""
        return None

    def is_special(self, id: int) -> bool:
        return id in self.specials.values()

    @property
    def specials(self) -> dict[str, int]:
        """Special tokens: name -> id."""
        return {}

    def merge(self, id: int) -> Merge | None:
        """For BPE: the merge that builds this token; None for base tokens or non-BPE tokenizers."""
        return None

    def encode_allowing_specials(self, text: str) -> list[int]:
        """Like encode, but a typed special-token string becomes the special token (for pitfalls)."""
        return self.encode(text)


class TiktokenTokenizer(Tokenizer):
    kind = "byte-level BPE (tiktoken)"
    byte_level = True

    def __init__(self, name: str, encoding: Any):
        self.name, self.encoding = name, encoding
        self.vocab_size = encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def count(self, text: str) -> int:
        # encode_to_numpy with no specials allowed or disallowed gives encode_ordinary's ids
        # without building a Python list of ints (~10% faster on long texts)
        try:
            return len(self.encoding.encode_to_numpy(text, allowed_special=set(), disallowed_special=()))
        except (UnicodeEncodeError, AttributeError):  # lone surrogates; an old tiktoken
            return len(self.encoding.encode_ordinary(text))

    def encode_allowing_specials(self, text: str) -> list[int]:
        return self.encoding.encode(text, allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids, errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(id)

    def token_name(self, id: int) -> str:
        # tiktoken names tokens by their bytes; show them as text, undecodable bytes as \xNN
        return self.token_bytes(id).decode("utf-8", errors="backslashreplace")

    def token_id(self, name: str) -> int | None:
        if name in self.specials:
            return self.specials[name]
        return self.ranks.get(name.encode("utf-8"))

    @cached_property
    def specials(self) -> dict[str, int]:
        return dict(self.encoding._special_tokens)

    @cached_property
    def ranks(self) -> dict[bytes, int]:
        return self.encoding._mergeable_ranks

    def merge(self, id: int) -> Merge | None:
        """tiktoken stores no merges: a token's rank is its merge priority, and its two parts are
        what byte-pair merging of its bytes gives using only lower ranks (as minbpe recovers them)."""
        if self.is_special(id):
            return None
        data = self.token_bytes(id)
        parts = bpe_parts(self.ranks, data, max_rank=self.ranks[data])
        if len(parts) != 2:
            return None
        return Merge(self.ranks[parts[0]], self.ranks[parts[1]], self.ranks[data])


def bpe_parts(ranks: dict[bytes, int], data: bytes, max_rank: int | None = None) -> list[bytes]:
    """Byte-pair merge `data` with `ranks`, lowest rank first, never using a rank >= max_rank.

    bpe_parts(r50k_ranks, b"the", max_rank=rank of b"the") -> [b"th", b"e"]: the last merge.
    """
    parts = [bytes([b]) for b in data]
    while len(parts) > 1:
        best, best_rank = None, None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and (best_rank is None or r < best_rank):
                best, best_rank = i, r
        if best is None or (max_rank is not None and best_rank >= max_rank):
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-ins for bytes ('Ġ' is the space byte) -> the byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


class HFTokenizer(Tokenizer):
    """A Hugging Face `tokenizers.Tokenizer`, with padding and truncation switched off."""

    def __init__(self, name: str, tokenizer: Any, kind: str | None = None):
        tokenizer.no_padding()
        tokenizer.no_truncation()
        # a typed "<|endoftext|>" or "[SEP]" stays plain text, as in tiktoken's encode_ordinary
        tokenizer.encode_special_tokens = True
        self.name, self.tok = name, tokenizer
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        spec = json.loads(tokenizer.to_str())
        self._model = spec.get("model") or {}
        self._prefix = self._model.get("continuing_subword_prefix") or "##"
        text = json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
        self.byte_level = '"ByteLevel"' in text
        self._metaspace = '"Metaspace"' in text
        model_type = self._model.get("type", "")
        self.kind = kind or {"BPE": "byte-level BPE" if self.byte_level else "BPE", "WordPiece": "WordPiece",
                             "Unigram": "Unigram (SentencePiece)"}.get(model_type, model_type)

    def _encode(self, text: str, template: bool) -> Any:
        return self.tok.encode(text, add_special_tokens=template)

    def encode(self, text: str) -> list[int]:
        return self._encode(text, False).ids

    def encode_for_model(self, text: str) -> list[int]:
        return self._encode(text, True).ids

    def encoding(self, text: str, template: bool = False) -> Any:
        """The full `tokenizers.Encoding` (ids, tokens, offsets into text)."""
        return self._encode(text, template)

    def encode_allowing_specials(self, text: str) -> list[int]:
        return self._allowing.encode(text, add_special_tokens=False).ids

    @cached_property
    def _allowing(self) -> Any:
        """A second copy that recognises typed special-token strings (the shared one never does)."""
        from tokenizers import Tokenizer as HFTok

        copy = HFTok.from_str(self.tok.to_str())
        copy.encode_special_tokens = False
        return copy

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False)

    def token_name(self, id: int) -> str:
        name = self.tok.id_to_token(id)
        if name is None:
            raise IndexError(f"id {id} is not in {self.name}'s vocabulary (0..{self.vocab_size - 1})")
        return name

    def token_id(self, name: str) -> int | None:
        return self.tok.token_to_id(name)

    def token_bytes(self, id: int) -> bytes:
        name = self.token_name(id)
        if self.is_special(id):
            return name.encode("utf-8")
        if self.byte_level:
            table = _byte_decoder()
            if all(c in table for c in name):
                return bytes(table[c] for c in name)
        if m := _BYTE_FALLBACK.fullmatch(name):  # SentencePiece byte fallback: <0xE6>
            return bytes([int(m.group(1), 16)])
        if self._metaspace:
            return name.replace("▁", " ").encode("utf-8")
        if self._model.get("type") == "WordPiece" and name.startswith(self._prefix):
            return name[len(self._prefix):].encode("utf-8")
        return name.encode("utf-8")

    @cached_property
    def specials(self) -> dict[str, int]:
        return {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}

    @cached_property
    def missing_bytes(self) -> frozenset[int]:
        """Bytes a byte-level vocabulary has no token for (SmolLM2 lacks some control bytes):
        encode drops them silently, so decode(encode(x)) loses them."""
        if not self.byte_level:
            return frozenset()
        from transformers.convert_slow_tokenizer import bytes_to_unicode

        return frozenset(b for b, c in bytes_to_unicode().items() if self.tok.token_to_id(c) is None)

    @cached_property
    def _merges(self) -> dict[int, Merge]:
        out: dict[int, Merge] = {}
        for rank, pair in enumerate(self._model.get("merges") or []):
            left, right = pair.split(" ", 1) if isinstance(pair, str) else pair
            ids = self.tok.token_to_id(left), self.tok.token_to_id(right), self.tok.token_to_id(left + right)
            if None not in ids:
                out[ids[2]] = Merge(ids[0], ids[1], rank)
        return out

    def merge(self, id: int) -> Merge | None:
        return self._merges.get(id)


class TransformersTokenizer(Tokenizer):
    """Any transformers tokenizer without a `tokenizers` backend (slow SentencePiece ones)."""

    def __init__(self, name: str, tokenizer: Any):
        self.name, self.tok = name, tokenizer
        self.vocab_size = len(tokenizer)
        self.kind = type(tokenizer).__name__

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False, split_special_tokens=True)

    def encode_for_model(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=True, split_special_tokens=True)

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids)

    def token_name(self, id: int) -> str:
        if not 0 <= id < self.vocab_size:
            raise IndexError(f"id {id} is not in {self.name}'s vocabulary (0..{self.vocab_size - 1})")
        return self.tok.convert_ids_to_tokens(id)

    def token_id(self, name: str) -> int | None:
        id = self.tok.convert_tokens_to_ids(name)
        return None if id is None or id == self.tok.unk_token_id and name != self.tok.unk_token else id

    def token_bytes(self, id: int) -> bytes:
        name = self.token_name(id)
        if m := _BYTE_FALLBACK.fullmatch(name):
            return bytes([int(m.group(1), 16)])
        return name.replace("▁", " ").encode("utf-8")

    @cached_property
    def specials(self) -> dict[str, int]:
        return {t: self.tok.convert_tokens_to_ids(t) for t in self.tok.all_special_tokens}


def from_transformers(name: str, tokenizer: Any) -> Tokenizer:
    """Wrap a transformers tokenizer, through its `tokenizers` backend when it has one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return HFTokenizer(name, backend)
    return TransformersTokenizer(name, tokenizer)


@dataclass
class TokenizerSpec:
    """A tokenizer the registry knows: `load(settings)` builds it (the cache calls it once)."""

    name: str
    load: Callable[["Settings"], Tokenizer]
    family: str = ""  # e.g. "OpenAI GPT-4o"
    description: str = ""
    source: str = ""  # where its files come from, for `tutor models`
    context_window: int | None = None  # of the model family it belongs to
    aliases: tuple[str, ...] = ()
    counts_by_default: bool = True  # included in /count with no tokenizer named
    plugin: str = field(default="", compare=False)

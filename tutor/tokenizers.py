"""Tokenizers behind one small interface, and the spec a plugin registers for each.

Three adapters cover every tokenizer the tutor shows:
- TiktokenTokenizer: tiktoken encodings (r50k_base, cl100k_base, o200k_base, Whisper's);
- HFTokenizer: a Hugging Face `tokenizers.Tokenizer` (GPT-2 rebuilt from the r50k ranks, BERT's
  WordPiece, SmolLM2, SentencePiece models from the hub, tokenizers trained by the toy trainer);
- TransformersTokenizer: any other transformers tokenizer (slow SentencePiece ones).

One rule for all: `encode(text)` treats special-token strings typed by a user as plain text and
adds no template tokens, so counts compare fairly; `encode_for_model(text)` is what the model
itself would be fed ([CLS] ... [SEP] for BERT).

Tokenizers a plugin creates while the tutor runs (the toy BPE trainer) live in
TUTOR_HOME/tokenizers/NAME/tokenizer.json; `save_tokenizer` writes one and registers it at once,
`sync_saved` registers the ones saved earlier (tools call it before listing tokenizers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .context import Tutor
    from .settings import Settings


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


# ---- GPT-2 as a Hugging Face tokenizers object ----------------------------------------------

def gpt2_tokenizers_object(ranks_path: str):
    """GPT-2's BPE as a Hugging Face `tokenizers.Tokenizer`, built from the same verified ranks
    tiktoken uses (r50k_base): vocabulary from the ranks, merges recovered from them.

    subtle 1: transformers' TikTokenConverter lists every way to split each token in two
    (108,299 "merges" for GPT-2); the ids come out right but /vocab would show merges GPT-2
    never had. So we build the object ourselves with exactly one merge per token, recovered as
    minbpe does (byte-pair merge the token's bytes with lower ranks only; the last two parts
    are its merge): GPT-2's 50,000.
    subtle 2: `<|endoftext|>` is an added special token, so by default `tokenizers` cuts it out
    of any text containing it, while tiktoken's encode_ordinary keeps it as plain text. Encode
    with `encode_special_tokens = True` (HFTokenizer does) to get tiktoken's ids exactly.
    """
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext.openai_public import r50k_pat_str
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTok
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    ranks = load_tiktoken_bpe(ranks_path)
    printable = bytes_to_unicode()  # GPT-2 writes byte 0x20 as 'Ġ' etc. in its vocab

    def name(b: bytes) -> str:
        return "".join(printable[x] for x in b)

    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            left, right = bpe_parts(ranks, token, max_rank=rank)
            merges.append((name(left), name(right)))
    tok = HFTok(models.BPE({name(b): r for b, r in ranks.items()}, merges))
    # the same split as tiktoken (its regex), then bytes -> printable characters
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r50k_pat_str), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    return tok


def gpt2_transformers_tokenizer(ranks_path: str):
    """The same, wrapped as a transformers tokenizer (what GPT-2-style models expect)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=gpt2_tokenizers_object(ranks_path),
                                   bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")


# ---- hub tokenizers (online) ----------------------------------------------------------------

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def load_hub(name: str, settings: "Settings") -> Tokenizer:
    """Any hub tokenizer id through transformers' AutoTokenizer (SentencePiece ones included)."""
    from .assets import offline
    from .tools import ToolError

    if not HUB_ID.match(name):
        raise ToolError(f"{name!r} is neither a known tokenizer nor a Hugging Face hub id (like t5-small "
                        "or org/model).")
    if offline(settings.offline):
        raise ToolError(f"{name!r} is not a tokenizer this tutor has offline, and the Hugging Face hub "
                        "cannot be reached from here (offline mode), so hub ids like t5-small do not work. "
                        "Use one of the offline tokenizers listed by /tokenizers.")
    from transformers import AutoTokenizer

    try:
        return from_transformers(name, AutoTokenizer.from_pretrained(name))
    except Exception as e:  # not on the hub, gated, or missing sentencepiece: say which
        raise ToolError(f"Could not load {name!r} from the Hugging Face hub: {type(e).__name__}: "
                        f"{str(e).splitlines()[0][:300]}") from None


# ---- tokenizers saved while the tutor runs (the toy BPE trainer) ----------------------------

SAVED_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")


def saved_dir(settings: "Settings") -> Path:
    """TUTOR_HOME/tokenizers: one folder per saved tokenizer, holding tokenizer.json."""
    return Path(settings.home) / "tokenizers"


def _saved_spec(name: str, path: Path) -> TokenizerSpec:
    meta_path = path.parent / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}

    def load(settings: "Settings") -> Tokenizer:
        from tokenizers import Tokenizer as HFTok

        return HFTokenizer(name, HFTok.from_file(str(path)))

    return TokenizerSpec(name, load, family=meta.get("family", "trained here (toy)"),
                         description=meta.get("description", "trained by the toy BPE trainer"),
                         source=str(path), counts_by_default=False, plugin="saved")


def save_tokenizer(tutor: "Tutor", name: str, tokenizer: Any, description: str = "",
                   family: str = "trained here (toy)") -> TokenizerSpec:
    """Save a `tokenizers.Tokenizer` as TUTOR_HOME/tokenizers/NAME/tokenizer.json and register it
    now, so /tokenize NAME works at once and after a restart. Replaces a saved one of that name."""
    from .assets import write_atomic
    from .tools import ToolError

    if not SAVED_NAME.match(name):
        raise ToolError(f"{name!r} cannot name a tokenizer: use lowercase letters, digits, '-', '_' or '.', "
                        "at most 64 characters.")
    existing = tutor.registry.lookup("tokenizers", name)
    if existing is not None and existing.plugin != "saved":
        raise ToolError(f"{name!r} is already the built-in tokenizer from {existing.plugin}; choose another name.")
    folder = saved_dir(tutor.settings) / name
    write_atomic(folder / "tokenizer.json", tokenizer.to_str().encode("utf-8"))
    write_atomic(folder / "meta.json", json.dumps({"description": description, "family": family}).encode())
    spec = _saved_spec(name, folder / "tokenizer.json")
    tutor.registry.tokenizers[name] = spec
    tutor.cache.evict(f"tokenizer:{name}")  # a retrained tokenizer replaces the old one
    return spec


def sync_saved(tutor: "Tutor") -> list[str]:
    """Register tokenizers saved under TUTOR_HOME/tokenizers that the registry does not know yet."""
    added = []
    folder = saved_dir(tutor.settings)
    if folder.is_dir():
        for path in sorted(folder.glob("*/tokenizer.json")):
            name = path.parent.name
            if SAVED_NAME.match(name) and tutor.registry.lookup("tokenizers", name) is None:
                tutor.registry.tokenizers[name] = _saved_spec(name, path)
                added.append(name)
    return added


def resolve(tutor: "Tutor", name: str) -> Tokenizer:
    """A tokenizer by registered name or alias, saved name, or (online) hub id; clear errors otherwise."""
    from .commands import suggest
    from .tools import ToolError

    name = name.strip()
    if not name:
        raise ToolError("Name a tokenizer, e.g. gpt2. /tokenizers lists them.")
    sync_saved(tutor)
    if tutor.registry.lookup("tokenizers", name) is not None:
        return tutor.tokenizer(name)
    names = tutor.registry.names("tokenizers")
    lowered = {n.lower(): n for n in names}
    if name.lower() in lowered:
        return tutor.tokenizer(lowered[name.lower()])
    from .assets import offline

    if offline(tutor.settings.offline) or not HUB_ID.match(name):
        raise ToolError(f"Unknown tokenizer {name!r}.{suggest(name, names)} Available offline: "
                        f"{', '.join(names)}." + ("" if offline(tutor.settings.offline) else
                                                  " Online, a Hugging Face hub id (like t5-small) works too."))
    try:
        return tutor.cache.get(f"tokenizer:hub:{name}", lambda: load_hub(name, tutor.settings))
    except ToolError as e:  # not on the hub either: perhaps a typo of a local name
        raise ToolError(f"{e}{suggest(name, names)}") from None


def smollm2_tokenizers_object(folder: Path):
    """SmolLM2's tokenizer from the folder converted out of the GGUF.

    subtle: the GGUF says its pre-tokenizer is "smollm", which llama.cpp runs as two regexes,
    `\\p{N}` (every digit alone) and then GPT-2's; transformers' GGUF conversion keeps only the
    second, so "2024" would become one token instead of SmolLM2's four. We put the digit split
    back, as SmolLM2's own tokenizer.json has it (Digits(individual_digits) then ByteLevel).
    """
    from tokenizers import Tokenizer as HFTok
    from tokenizers import pre_tokenizers

    tok = HFTok.from_file(str(Path(folder) / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    return tok


# ---- what tools show: one piece per token ---------------------------------------------------

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
    # one lookup per distinct id: a long text repeats its tokens many times
    names: dict[int, str] = {}
    datas: dict[int, bytes] = {}
    for i in set(ids):
        names[i], datas[i] = tok.token_name(i), tok.token_bytes(i)
    special_ids = set(tok.specials.values())
    full = b"".join(datas[i] for i in ids)
    n = len(full)

    def starts_char(k: int) -> bool:  # byte k begins a character (it is not 10xxxxxx), or is the end
        return k >= n or full[k] & 0xC0 != 0x80

    out, pos, char = [], 0, 0
    for id in ids:
        chunk = datas[id]
        a, b = pos, pos + len(chunk)
        pos = b
        if starts_char(a) and starts_char(b):
            text = chunk.decode("utf-8", errors="replace")
            out.append(Piece(id, names[id], chunk, text, char, char + len(text), id in special_ids))
            char += len(text)
            continue
        # part of a character: whole characters as text, the cut one as its bytes, named
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
                whole = full[c0:c1].decode("utf-8", errors="replace")
                which = f"bytes {x0 - c0 + 1}-{x1 - c0}" if x1 - x0 > 1 else f"byte {x0 - c0 + 1}"
                cuts.append(f"{which} of the {c1 - c0} of {whole!r} (U+{ord(whole[0]):04X})")
            c0 = c1
        char += sum(1 for x in chunk if x & 0xC0 != 0x80)  # characters that start in this token
        out.append(Piece(id, names[id], chunk, "".join(shown), None, None, id in special_ids,
                         partial="; ".join(cuts)))
    return out


def clean_text(text: str, limit: int) -> tuple[str, list[str]]:
    """Text a tokenizer can take, and notes on what was changed.

    Lone surrogates (from a file decoded with errors='surrogateescape', or a browser that split
    an emoji) cannot be encoded as UTF-8; they become U+FFFD, and the learner is told."""
    from .tools import ToolError

    if len(text) > limit:
        raise ToolError(f"That text has {len(text):,} characters; the limit is {limit:,}. Send a shorter "
                        "text, or raise TUTOR_MAX_INPUT_CHARS.")
    notes = []
    try:
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


def byte_bpe_tokenizer(merges: list[tuple[bytes, bytes]], pattern: str | None = None):
    """A `tokenizers.Tokenizer` from a byte-level BPE's ordered merges, as a minbpe-style trainer
    makes them: ids 0-255 are the bytes themselves, merge i makes id 256 + i and has rank i.

    `pattern` is the split regex applied before merging (None: the whole text is one chunk).
    Pass the result to `save_tokenizer` to make it a tokenizer every tool can use.
    """
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTok
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    printable = bytes_to_unicode()

    def name(b: bytes) -> str:
        return "".join(printable[x] for x in b)

    vocab = {name(bytes([b])): b for b in range(256)}
    for i, (left, right) in enumerate(merges):
        vocab.setdefault(name(left + right), 256 + i)  # subtle: a second merge giving the same bytes is unreachable
    tok = HFTok(models.BPE(vocab, [(name(a), name(b)) for a, b in merges]))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.pre_tokenizer = byte_level if pattern is None else pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(pattern), behavior="isolated"), byte_level])
    tok.decoder = decoders.ByteLevel()
    return tok

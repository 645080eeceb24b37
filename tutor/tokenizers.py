"""Tokenizers behind one small interface, and the spec a plugin registers for each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .settings import Settings


class Tokenizer:
    """What every tool may ask of a tokenizer. Adapters wrap tiktoken, tokenizers, sentencepiece."""

    name: str = ""
    kind: str = ""  # "byte-level BPE", "WordPiece", "Unigram", ...
    vocab_size: int = 0

    def encode(self, text: str) -> list[int]:
        """Ids for text; special-token strings typed by a user are plain text."""
        raise NotImplementedError

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def token_bytes(self, id: int) -> bytes:
        """The bytes one token stands for (may be part of a UTF-8 character)."""
        raise NotImplementedError

    def is_special(self, id: int) -> bool:
        return False


class TiktokenTokenizer(Tokenizer):
    kind = "byte-level BPE (tiktoken)"

    def __init__(self, name: str, encoding: Any):
        self.name, self.encoding = name, encoding
        self.vocab_size = encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def count(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def decode(self, ids: list[int]) -> str:
        return self.encoding.decode(ids, errors="replace")

    def token_bytes(self, id: int) -> bytes:
        return self.encoding.decode_single_token_bytes(id)

    def is_special(self, id: int) -> bool:
        return id in self.encoding._special_tokens.values()


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


def gpt2_tokenizers_object(ranks_path: str):
    """GPT-2's BPE as a Hugging Face `tokenizers.Tokenizer`, built from the same verified ranks
    tiktoken uses (r50k_base): vocabulary from the ranks, merges recovered from them."""
    from tiktoken_ext.openai_public import r50k_pat_str
    from transformers.convert_slow_tokenizer import TikTokenConverter

    return TikTokenConverter(vocab_file=ranks_path, pattern=r50k_pat_str,
                             extra_special_tokens=["<|endoftext|>"]).converted()


def gpt2_transformers_tokenizer(ranks_path: str):
    """The same, wrapped as a transformers tokenizer (what GPT-2-style models expect)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=gpt2_tokenizers_object(ranks_path),
                                   bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")

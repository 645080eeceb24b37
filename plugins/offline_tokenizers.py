"""Hugging Face tokenizers that work offline: GPT-2 (rebuilt from the r50k ranks), BERT's
WordPiece (bert-base-uncased's vocabulary, from all-MiniLM-L6-v2's files) and SmolLM2's BPE.

Tokenizers the toy BPE trainer saves under TUTOR_HOME/tokenizers/NAME/ are registered by
tutor.tokenizers.save_tokenizer / sync_saved, not here.
"""

from functools import cached_property

from tutor import TokenizerSpec, hookimpl
from tutor.assets import (GPT2_TIKTOKEN, MINILM_FILES, SMOLLM2_GGUF, minilm_folder, package_file, smollm2_folder,
                          tiktoken_encoding)
from tutor.tokenizers import HFTokenizer, TiktokenTokenizer, gpt2_tokenizers_object, smollm2_tokenizers_object


class GPT2Tokenizer(HFTokenizer):
    """GPT-2 as Hugging Face names it ('Ġthe', its 50,000 merges), with its ids from tiktoken's
    r50k_base: the same ranks and split, identical ids (a test checks), about 6x faster than
    the `tokenizers` object on long texts. GPT-2 adds no template tokens, so encode_for_model
    is encode."""

    def __init__(self, tokenizer, encoding):
        super().__init__("gpt2", tokenizer)
        self.fast = TiktokenTokenizer("gpt2", encoding)

    def encode(self, text: str) -> list[int]:
        return self.fast.encode(text)

    def encode_for_model(self, text: str) -> list[int]:
        return self.fast.encode(text)

    def count(self, text: str) -> int:
        return self.fast.count(text)

    def encode_allowing_specials(self, text: str) -> list[int]:
        return self.fast.encode_allowing_specials(text)

    def token_bytes(self, id: int) -> bytes:
        data = self._bytes.get(id)
        return data if data is not None else self.fast.token_bytes(id)  # unknown ids raise as tiktoken does

    def token_name(self, id: int) -> str:
        name = self._names.get(id)
        return name if name is not None else super().token_name(id)

    # /tokenize looks up every distinct token of a long text: plain dicts, built once, are ~50x faster
    @cached_property
    def _bytes(self) -> dict[int, bytes]:
        enc = self.fast.encoding
        return {**{r: b for b, r in enc._mergeable_ranks.items()},
                **{i: s.encode("utf-8") for s, i in enc._special_tokens.items()}}

    @cached_property
    def _names(self) -> dict[int, str]:
        return {i: name for name, i in self.tok.get_vocab(with_added_tokens=True).items()}


def _gpt2(settings):
    """Built from the ranks once (recovering 50,000 merges takes seconds), then read from the
    data dir, keyed by the ranks file's sha256."""
    from tokenizers import Tokenizer

    from tutor.assets import derived_file

    cached = settings.assets / "converted" / f"gpt2-tokenizers-{GPT2_TIKTOKEN.sha256[:16]}.json"
    derived_file(cached, lambda: gpt2_tokenizers_object(  # its sha256 is recorded and checked at load
        str(package_file(GPT2_TIKTOKEN, settings.assets))).to_str().encode("utf-8"))
    return GPT2Tokenizer(Tokenizer.from_file(str(cached)),
                         tiktoken_encoding("r50k_base", settings.assets, settings.offline))


def _bert(settings):
    from tokenizers import Tokenizer

    return HFTokenizer("bert-base-uncased", Tokenizer.from_file(str(minilm_folder(settings.assets) / "tokenizer.json")))


def _smollm2(settings):
    return HFTokenizer("smollm2", smollm2_tokenizers_object(smollm2_folder(settings.assets)))


@hookimpl
def register_tokenizers(register):
    register(TokenizerSpec("gpt2", _gpt2, family="GPT-2 / DistilGPT2", context_window=1024,
                           description="GPT-2's byte-level BPE: Hugging Face's names and merges, built from "
                                       "the same ranks as r50k_base, ids from tiktoken (identical)",
                           source=f"{GPT2_TIKTOKEN.source}; merges recovered from the ranks"))
    register(TokenizerSpec("bert-base-uncased", _bert, family="BERT (base, uncased)", context_window=512,
                           aliases=("bert",),
                           description="BERT's WordPiece, uncased, 30,522 tokens (lower-cases, strips accents)",
                           source=MINILM_FILES["tokenizer.json"].source))
    # not in /count's and /compare's default set: its first load converts the model's GGUF (~1 min)
    register(TokenizerSpec("smollm2", _smollm2, family="SmolLM2 (Hugging Face)", context_window=8192,
                           counts_by_default=False,
                           description="SmolLM2's byte-level BPE, 49,152 tokens; every digit is its own token",
                           source=f"{SMOLLM2_GGUF.source}, converted once"))

"""Hugging Face `tokenizers` objects built here: GPT-2 from tiktoken's verified ranks, SmolLM2
from its converted GGUF folder, and a byte-level BPE from a trainer's ordered merges."""

from __future__ import annotations

from pathlib import Path

from .adapters import bpe_parts


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

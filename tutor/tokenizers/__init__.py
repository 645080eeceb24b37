"""Tokenizers behind one small interface, and how a name a user types finds one.

    adapters.py  the Tokenizer interface, its tiktoken / tokenizers / transformers adapters, TokenizerSpec
    builders.py  tokenizers objects built here: GPT-2 from tiktoken's ranks, SmolLM2, a trainer's BPE
    saved.py     find_tokenizer (names, any case, saved tokenizers, hub ids); save_tokenizer, sync_saved
    text.py      what tools show: pieces, clean_text, visible, text_to_id, typed_specials
"""

from .adapters import (HFTokenizer, Merge, TiktokenTokenizer, Tokenizer, TokenizerSpec, TransformersTokenizer,
                       bpe_parts, from_transformers)
from .builders import byte_bpe_tokenizer, gpt2_tokenizers_object, gpt2_transformers_tokenizer, smollm2_tokenizers_object
from .saved import SAVED_NAME, find_tokenizer, load_hub, save_tokenizer, saved_dir, sync_saved
from .text import Piece, clean_text, pieces, text_to_id, typed_specials, visible

__all__ = ["HFTokenizer", "Merge", "TiktokenTokenizer", "Tokenizer", "TokenizerSpec", "TransformersTokenizer",
           "bpe_parts", "from_transformers", "byte_bpe_tokenizer", "gpt2_tokenizers_object",
           "gpt2_transformers_tokenizer", "smollm2_tokenizers_object", "SAVED_NAME", "find_tokenizer", "load_hub",
           "save_tokenizer", "saved_dir", "sync_saved", "Piece", "clean_text", "pieces", "text_to_id",
           "typed_specials", "visible"]

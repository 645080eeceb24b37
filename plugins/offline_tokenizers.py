"""Hugging Face tokenizers that work offline: GPT-2 (rebuilt from the r50k ranks), BERT's
WordPiece (bert-base-uncased's vocabulary, from all-MiniLM-L6-v2's files) and SmolLM2's BPE.

Tokenizers the toy BPE trainer saves under TUTOR_HOME/tokenizers/NAME/ are registered by
tutor.tokenizers.save_tokenizer / sync_saved, not here.
"""

from tutor import TokenizerSpec, hookimpl
from tutor.assets import GPT2_TIKTOKEN, MINILM_FILES, SMOLLM2_GGUF, minilm_folder, package_file, smollm2_folder
from tutor.tokenizers import HFTokenizer, gpt2_tokenizers_object, smollm2_tokenizers_object


def _gpt2(settings):
    """Built from the ranks once (recovering 50,000 merges takes seconds), then read from the
    data dir, keyed by the ranks file's sha256."""
    from tokenizers import Tokenizer

    from tutor.assets import derived_file

    cached = settings.assets / "converted" / f"gpt2-tokenizers-{GPT2_TIKTOKEN.sha256[:16]}.json"
    derived_file(cached, lambda: gpt2_tokenizers_object(  # its sha256 is recorded and checked at load
        str(package_file(GPT2_TIKTOKEN, settings.assets))).to_str().encode("utf-8"))
    return HFTokenizer("gpt2", Tokenizer.from_file(str(cached)))


def _bert(settings):
    from tokenizers import Tokenizer

    return HFTokenizer("bert-base-uncased", Tokenizer.from_file(str(minilm_folder(settings.assets) / "tokenizer.json")))


def _smollm2(settings):
    return HFTokenizer("smollm2", smollm2_tokenizers_object(smollm2_folder(settings.assets)))


@hookimpl
def register_tokenizers(register):
    register(TokenizerSpec("gpt2", _gpt2, family="GPT-2 / DistilGPT2", context_window=1024,
                           description="GPT-2's byte-level BPE as a Hugging Face tokenizers object, built from "
                                       "the same ranks as r50k_base (identical ids)",
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

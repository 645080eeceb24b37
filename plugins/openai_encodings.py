"""OpenAI's tiktoken encodings: r50k_base (GPT-2, GPT-3), cl100k_base (GPT-3.5/4), o200k_base (GPT-4o).

Loaded through tiktoken itself; offline, from package files verified against tiktoken's
official sha256 (tutor/assets.py).
"""

from tutor import TokenizerSpec, hookimpl
from tutor.assets import TIKTOKEN, tiktoken_encoding
from tutor.tokenizers import TiktokenTokenizer

ENCODINGS = {
    # name: (family, context window of that family's best-known model, aliases)
    "r50k_base": ("OpenAI GPT-2 / GPT-3", 1024, ("gpt2",)),
    "cl100k_base": ("OpenAI GPT-3.5 / GPT-4", 8192, ()),
    "o200k_base": ("OpenAI GPT-4o / o-series", 128_000, ()),
}


def _loader(name):
    def load(settings):
        return TiktokenTokenizer(name, tiktoken_encoding(name, settings.assets, settings.offline))
    return load


@hookimpl
def register_tokenizers(register):
    for name, (family, window, aliases) in ENCODINGS.items():
        src = TIKTOKEN[name]
        register(TokenizerSpec(name, _loader(name), family=family, context_window=window, aliases=aliases,
                               description=f"tiktoken {name}", source=f"tiktoken download, or {src.package.source}"))

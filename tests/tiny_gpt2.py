"""A Tutor with the built-in tools plus a tiny random GPT-2 (hidden 32, 2 layers, untrained
weights, GPT-2's real tokenizer): the stand-in, labelled as one, that tests about mechanics run
on and compare with transformers' own code.

    tutor = tiny_gpt2_tutor(tmp_path / "home", max_new_tokens=200)
    chat.final(f"/beam {TINY} The cat", tutor.session("ada"))
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest

from conftest import ASSETS
from tutor import hookimpl
from tutor.assets import GPT2_TIKTOKEN, package_file
from tutor.context import Tutor
from tutor.models import ModelSpec
from tutor.plugins import build_registry
from tutor.settings import Settings
from tutor.tokenizers import gpt2_transformers_tokenizer

TINY = "tiny-gpt2"


def _tiny_gpt2(req):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=64)).to(req.device)
    return model, gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, req.settings.assets)))


def tiny_gpt2_tutor(home: Path, **settings: Any) -> Tutor:
    """On CPU, offline; `settings` add to or override those (e.g. max_new_tokens)."""
    spec = ModelSpec(TINY, "GPT-2 architecture, tiny (hidden 32, 2 layers), untrained weights", "gpt2",
                     "causal-lm", _tiny_gpt2, source="built in the test")
    plugin = types.SimpleNamespace(register_models=hookimpl(lambda register: register(spec)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TUTOR_ENTRY_POINTS", "0")
        registry = build_registry(extra=[("tiny_models", plugin)])
    return Tutor(Settings(**{"home": home, "assets_dir": ASSETS, "offline": "yes", "device": "cpu", **settings}),
                 registry)

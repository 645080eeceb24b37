"""A learner's private model: only they see it in /models, no server path is shown, and the owner
check holds however the model is named (id, or the path of its folder, relative or absolute),
in every tool that takes a model. A tiny random GPT-2 saved as Alice's fine-tune (a stand-in)."""

from __future__ import annotations

import json
import re

import pytest

from tutor import chat

from test_finetune import byte_tokenizer, tiny_gpt2

TOOLS = ["inspect", "attention", "lens", "embed"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from tutor.plugins import _load_file, builtin_dir
    ft = _load_file(builtin_dir("plugins") / "finetune.py", "tutor_owner_test")
    home = tmp_path_factory.mktemp("owners") / "home"
    folder = ft.models_dir(home) / "ft-alice-1"
    folder.mkdir(parents=True)
    tiny_gpt2(dropout=0.0).save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    (folder / ft.MANIFEST).write_text(json.dumps({
        "id": "ft-alice-1", "label": "tiny GPT-2 fine-tuned on alice-secret-notes.txt (test stand-in)",
        "architecture": "gpt2", "owner": "alice", "shared": False, "base_model": "tiny", "parameters": 1,
        "file": "alice-secret-notes.txt"}))
    return home


@pytest.fixture(scope="module")
def owners_tutor(home):
    from tutor.context import Tutor
    from tutor.plugins import build_registry
    from tutor.settings import Settings
    s = Settings(home=home, offline="yes", device="cpu")
    reg = build_registry(allow=["finetune", "models", *TOOLS], settings=s)
    assert not reg.failures, reg.failures
    assert reg.lookup("models", "ft-alice-1").owner == "alice"
    return Tutor(s, registry=reg)


def ask(tutor, learner, message):
    return chat.final(message, tutor.session(learner))


def names(home):
    folder = home / "models" / "ft-alice-1"
    return ["ft-alice-1", str(folder), str(folder) + "/", "models/ft-alice-1", "./models/ft-alice-1",
            "models/../models/ft-alice-1"]


@pytest.mark.parametrize("tool", TOOLS)
def test_another_learner_cannot_use_a_private_model_by_any_name(owners_tutor, home, tool, monkeypatch):
    monkeypatch.chdir(home)  # the server runs from the data dir: models/ft-alice-1 is a folder
    for name in names(home):
        reply = ask(owners_tutor, "bob", f"/{tool} {name} hello")
        # refused: by the owner check, or (an absolute path) as no model id at all
        assert reply.error and ("not yours" in reply.text or "not a valid model" in reply.text), (name, reply.text)
        if name in ("ft-alice-1", "models/ft-alice-1"):
            assert "not yours" in reply.text, (name, reply.text)  # before: models/... skipped the check


def test_the_owner_can_use_it_by_path(owners_tutor, home, monkeypatch):
    monkeypatch.chdir(home)
    reply = ask(owners_tutor, "alice", "/inspect models/ft-alice-1")
    assert not reply.error, reply.text


def test_models_lists_only_your_own_private_models_and_no_server_path(owners_tutor, home):
    bob = ask(owners_tutor, "bob", "/models")
    assert "ft-alice-1" not in json.dumps(bob.data) and "alice-secret-notes" not in bob.plain()
    assert "ft-alice-1" not in [r["id"] for r in bob.data["models"]]
    alice = ask(owners_tutor, "alice", "/models")
    assert "ft-alice-1" in [r["id"] for r in alice.data["models"]]
    for reply in (bob, alice):
        shown = reply.plain() + json.dumps(reply.data)
        assert str(home) not in shown and not re.search(r"(?<![\w.:])/(root|home|tmp|usr|var)/", shown), shown
    named = ask(owners_tutor, "bob", "/models ft-alice-1")
    assert named.error and "ft-alice-1" not in json.dumps(named.data or {})


def test_another_learners_private_model_is_not_offered_as_a_choice(owners_tutor):
    """Before: a mistyped model id listed every model, another learner's private ones included."""
    bob = ask(owners_tutor, "bob", "/inspect nope-model")
    assert bob.error and "ft-alice-1" not in bob.text
    assert "ft-alice-1" in ask(owners_tutor, "alice", "/inspect nope-model").text

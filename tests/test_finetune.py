"""/finetune and tutor/jobs.py on a tiny random GPT-2 (hidden 32, 2 layers) with a byte-level
tokenizer: the mechanics of the loop, saving, reloading and every bad input, in seconds.
The real run on smollm2-135m is marked slow."""

from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path

import pytest

from tutor import chat, hookimpl
from tutor.models import ModelSpec

TEXT = ("The quick brown fox jumps over the lazy dog. A small cat sleeps on the warm mat. "
        "Every morning the baker sells fresh bread to the people of the town. ") * 30


def byte_tokenizer():
    """A real byte-level BPE tokenizer with no merges: 256 byte tokens plus <|endoftext|> (a stand-in)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = 256
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def tiny_gpt2(seed: int = 0, dropout: float = 0.1):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=257, n_positions=128, n_embd=32, n_layer=2, n_head=2, bos_token_id=256, eos_token_id=256,
                                      resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout))


class TinyModels:
    """A test plugin: one tiny pretrained-shaped causal LM (random weights, labelled as such)."""

    @hookimpl
    def register_models(self, register):
        register(ModelSpec("tiny-gpt2", "tiny GPT-2 (test stand-in, random weights)", "gpt2", "causal-lm",
                           lambda req: (tiny_gpt2().to(req.device), byte_tokenizer()), parameters=None))


def make_tutor(home: Path, **settings):
    from tutor.context import Tutor
    from tutor.plugins import build_registry
    from tutor.settings import Settings

    s = Settings(home=home, offline="yes", device="cpu", **settings)
    reg = build_registry(allow=["finetune", "jobs", "tiny"], extra=[("tiny", TinyModels())], settings=s)
    assert not reg.failures, reg.failures
    return Tutor(s, registry=reg)


@pytest.fixture(autouse=True)
def _one_thread():
    """Matrices this small gain nothing from a second thread, and on a busy shared machine two
    spinning threads make each step ~20x slower; restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def tt(home):
    return make_tutor(home)


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text(TEXT)
    return p


def ask(tutor, message, learner="ada"):
    return chat.final(message, tutor.session(learner))


QUICK = "--steps 6 --block-size 32 --batch-size 4 --lr 3e-3"


# ---- the loop itself ------------------------------------------------------------------------

def test_first_step_loss_is_the_models_own_loss():
    ft = plugin_module()
    model, reference = tiny_gpt2(seed=1, dropout=0.0), tiny_gpt2(seed=1, dropout=0.0)  # same weights
    train, _ = ft.make_blocks(byte_tokenizer()(TEXT).input_ids, 32)
    plan = ft.Plan(steps=1, lr=1e-3, batch_size=4, grad_accum=1, block_size=32, seed=7)
    first = next(ft.fit(model, train, plan, "cpu"))
    batch = train[ft.batch_order(len(train), 4, 1, 7)[0]]  # the batch fit() drew for step 1
    expected = reference(input_ids=batch, labels=batch).loss.item()
    assert first.loss == pytest.approx(expected, rel=1e-5)
    assert first.tokens == 4 * 32
    assert model.transformer.wte.weight.sub(reference.transformer.wte.weight).abs().max() > 0  # it stepped


def plugin_module():
    """The plugin as a module (the one the plugin manager registers)."""
    from tutor.builtin import finetune

    return finetune


def test_loss_goes_down_and_blocks_are_cut_right():
    ft = plugin_module()
    ids = list(range(100))
    train, held = ft.make_blocks(ids, 10)
    assert train.shape == (9, 10) and held.shape == (1, 10) and held[0, 0].item() == 90
    model = tiny_gpt2()
    ids = byte_tokenizer()(TEXT).input_ids
    train, _ = ft.make_blocks(ids, 32)
    plan = ft.Plan(steps=40, lr=3e-3, batch_size=8, grad_accum=2, block_size=32, seed=0)
    losses = [s.loss for s in ft.fit(model, train, plan, "cpu")]
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0  # clearly learning, not noise


def test_cancel_stops_within_one_step():
    ft = plugin_module()
    train, _ = ft.make_blocks(byte_tokenizer()(TEXT).input_ids, 32)
    seen = []
    plan = ft.Plan(steps=50, lr=1e-3, batch_size=2, grad_accum=3, block_size=32, seed=0)
    for info in ft.fit(tiny_gpt2(), train, plan, "cpu", stop=lambda: len(seen) >= 3):
        seen.append(info)
    assert len(seen) == 3


# ---- the tool, end to end -------------------------------------------------------------------

def test_finetune_end_to_end_registers_a_usable_model(tt, text_file, home):
    r = ask(tt, f"/finetune tiny-gpt2 --file {text_file} {QUICK}")
    assert not r.error, r.text
    d = r.data
    assert d["model_id"] == "ft-ada-1" and d["method"] == "lora" and d["steps"] == 6
    assert len(d["train_losses"]) == 6
    assert d["perplexity_before"] == pytest.approx(2.718281828 ** d["val_loss_before"])
    assert (home / "models" / "ft-ada-1" / "tutor-model.json").is_file()
    assert not list((home / "models").glob(".tmp-*"))
    # usable at once, by this learner only
    session = tt.session("ada")
    with session.context().model("ft-ada-1") as lm:
        assert lm.spec.owner == "ada" and not any("lora" in n for n, _ in lm.model.named_parameters())
    from tutor.tools import ToolError
    with pytest.raises(ToolError, match="not yours"):
        with tt.session("bob").context().model("ft-ada-1"):
            pass
    # the data a lesson reads, the table and the jobs listing
    assert [g["prompt"] for g in d["generations"]][1] == "Once upon a time"
    assert r.table.columns == ["prompt", "before", "after"] and r.figure is not None
    jobs = ask(tt, "/jobs")
    assert jobs.data["jobs"][0]["status"] == "done" and jobs.data["jobs"][0]["result"]["model_id"] == "ft-ada-1"
    assert ask(tt, "/jobs", learner="bob").data == {"jobs": []}
    # share it: now bob may use it
    assert not ask(tt, "/finetune share ft-ada-1", learner="bob").data.get("shared")
    assert ask(tt, "/finetune share ft-ada-1").data == {"shared": "ft-ada-1"}
    with tt.session("bob").context().model("ft-ada-1"):
        pass
    assert ask(tt, "/finetune list", learner="bob").data == {"models": ["ft-ada-1"]}


def test_full_method_reports_update_norms(tt, text_file):
    r = ask(tt, f"/finetune tiny-gpt2 --file {text_file} --method full {QUICK} --grad-accum 2")
    assert not r.error, r.text
    assert r.data["method"] == "full" and r.data["trainable_parameters"] == r.data["parameters"]
    assert "transformer.h.*.attn.c_attn" in r.text  # the per-module update table


def test_reload_after_restart_generates_identically(home, text_file):
    first = make_tutor(home)
    r = ask(first, f"/finetune tiny-gpt2 --file {text_file} {QUICK}")
    assert not r.error, r.text
    after = [g["after"] for g in r.data["generations"]]
    prompts = [g["prompt"] for g in r.data["generations"]]
    ft = plugin_module()
    second = make_tutor(home)  # a restart: a new Tutor finds the saved model on disk
    assert second.registry.lookup("models", "ft-ada-1").owner == "ada"
    with second.session("ada").context().model("ft-ada-1") as lm:
        assert ft.generate(lm.model, lm.tokenizer, prompts, "cpu") == after
    # a next model gets the next id, not a clash
    r2 = ask(second, f"/finetune tiny-gpt2 --file {text_file} --steps 2 --block-size 32")
    assert r2.data["model_id"] == "ft-ada-2"


def test_job_survives_the_page_going_away(tt, text_file):
    session = tt.session("ada")
    stream = chat.respond(f"/finetune tiny-gpt2 --file {text_file} --steps 60 --block-size 32", session)
    next(stream)  # the page saw the first progress reply ...
    stream.close()  # ... then it reloaded: the follower is gone, the job is not
    job = tt.jobs.of("ada", "finetune")[-1]
    assert job.active or job.status == "done"
    r = ask(tt, "/finetune status")  # coming back follows the same job to its end
    assert not r.error and r.data["steps"] == 60 and r.data["job"] == job.id


def test_cancel_keeps_a_usable_checkpoint(tt, text_file):
    cancel = threading.Event()
    session = tt.session("ada")
    replies = []
    for reply in chat.respond(f"/finetune tiny-gpt2 --file {text_file} --steps 1000 --block-size 32", session, cancel):
        replies.append(reply)
        if reply.data.get("step", 0) >= 1:
            cancel.set()  # the Stop button
    final = replies[-1]
    assert not final.error, final.text
    assert final.data["stopped"] == "cancelled" and 1 <= final.data["steps"] < 1000
    with session.context().model(final.data["model_id"]):
        pass


def test_second_job_of_a_learner_is_refused_and_others_queue(home, text_file):
    tt = make_tutor(home)
    slow = f"/finetune tiny-gpt2 --file {text_file} --steps 400 --block-size 32"
    first = chat.respond(slow, tt.session("ada"))
    next(first)
    r = ask(tt, slow)
    assert r.error and "still running" in r.text and "/finetune cancel" in r.text
    bob = chat.respond(f"/finetune tiny-gpt2 --file {text_file} --steps 2 --block-size 32", tt.session("bob"))
    waiting = next(bob)
    assert "queued" in waiting.text and "waiting for finetune-1" in waiting.text
    stopped = ask(tt, "/finetune cancel")  # follows ada's job to its checkpoint
    assert not stopped.error and stopped.data["stopped"] == "cancelled" and stopped.data["model_id"] == "ft-ada-1"
    results = list(bob)
    assert not results[-1].error and results[-1].data["model_id"] == "ft-bob-1"
    assert tt.jobs.of("ada")[0].status == "cancelled"


def test_time_limit_stops_and_saves(home, text_file):
    tt = make_tutor(home, finetune_max_minutes=0.0001)
    r = ask(tt, f"/finetune tiny-gpt2 --file {text_file} --steps 500 --block-size 32")
    assert not r.error and r.data["stopped"].startswith("time limit") and r.data["steps"] < 500


# ---- saving is atomic, a full disk loses nothing --------------------------------------------

def test_save_is_atomic_when_interrupted(tmp_path):
    ft = plugin_module()
    folder = tmp_path / "models" / "m"

    def half_then_die(tmp):
        (tmp / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # killed mid-save
    with pytest.raises(KeyboardInterrupt):
        ft.save_atomic(folder, half_then_die, {"id": "m"})
    assert not folder.exists() and not list(folder.parent.iterdir())
    ft.save_atomic(folder, lambda tmp: (tmp / "w").write_text("ok"), {"id": "m"})
    assert json.loads((folder / ft.MANIFEST).read_text()) == {"id": "m"}
    with pytest.raises(OSError):  # a second save under the same name never overwrites the first
        ft.save_atomic(folder, lambda tmp: (tmp / "w").write_text("new"), {"id": "m"})
    assert (folder / "w").read_text() == "ok" and len(list(folder.parent.iterdir())) == 1


def test_disk_full_while_saving(tt, text_file, home, monkeypatch):
    assert not ask(tt, f"/finetune tiny-gpt2 --file {text_file} --steps 2 --block-size 32").error
    from transformers import GPT2LMHeadModel

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(GPT2LMHeadModel, "save_pretrained", full)
    r = ask(tt, f"/finetune tiny-gpt2 --file {text_file} --steps 2 --block-size 32")
    assert r.error and "disk is full" in r.text and "earlier models are untouched" in r.text
    assert sorted(p.name for p in (home / "models").iterdir()) == ["ft-ada-1"]
    assert tt.registry.lookup("models", "ft-ada-2") is None
    with tt.session("ada").context().model("ft-ada-1"):
        pass


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, expect", [
    ("empty.txt", b"", "is empty"),
    ("blank.txt", b"  \n\n ", "is empty"),
    ("pic.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("latin.txt", "café crème brûlée".encode("latin-1"), "not UTF-8"),
    ("notes.pdf", b"%PDF-1.4", "not a .txt or .md"),
    ("short.txt", b"Too short to learn from.", "needs at least 64 tokens"),
])
def test_bad_files_get_clear_messages(tt, tmp_path, name, content, expect):
    p = tmp_path / name
    p.write_bytes(content)
    r = ask(tt, f"/finetune tiny-gpt2 --file {p} --block-size 32")
    assert r.error and expect in r.text, r.text


def test_file_over_the_upload_limit(home, tmp_path):
    tt = make_tutor(home, max_upload_mb=0.001)
    p = tmp_path / "big.md"
    p.write_text("word " * 1000)
    r = ask(tt, f"/finetune tiny-gpt2 --file {p}")
    assert r.error and "upload limit is 0.001 MB" in r.text


@pytest.mark.parametrize("args, expect", [
    ("--steps 0", "--steps must be at least 1"),
    ("--steps 999999", "more than this tutor allows (2000"),
    ("--lr 5", "--lr must be"),
    ("--lr -1", "--lr must be"),
    ("--lr fast", "--lr expects a number"),
    ("--from-scratch --method lora", "LoRA adapts a pretrained model"),
    ("--block-size 4096", "--block-size must be"),
    ("", "Give a text file"),
])
def test_bad_options(tt, text_file, args, expect):
    file = f"--file {text_file}" if args else ""
    r = ask(tt, f"/finetune tiny-gpt2 {file} {args}")
    assert r.error and expect in r.text, r.text


def test_missing_file_and_no_job(tt):
    assert "No file at" in ask(tt, "/finetune tiny-gpt2 --file /nonexistent/notes.txt").text
    assert "no fine-tune job yet" in ask(tt, "/finetune status").text
    assert "No fine-tune job of yours is running" in ask(tt, "/finetune cancel").text


def test_block_longer_than_the_model_context(tt, text_file):
    r = ask(tt, f"/finetune tiny-gpt2 --file {text_file} --block-size 256")
    assert r.error and "longer than this model's context (128 tokens)" in r.text


# ---- the job registry on its own ------------------------------------------------------------

def test_jobs_queue_beyond_the_limit_and_report_bugs():
    from tutor.jobs import Jobs
    from tutor.tools import Reply

    jobs, gate = Jobs(), threading.Event()

    def slow(job):
        yield Reply(text="working", done=False, progress=0.5)
        gate.wait(5)
        yield Reply(text="finished", data={"ok": True})

    a = jobs.submit("ada", "k", "a", slow, limit=1)
    b = jobs.submit("bob", "k", "b", lambda job: iter([Reply(text="b done")]), limit=1)
    time.sleep(0.2)
    assert a.status == "running" and b.status == "queued"
    gate.set()
    assert a.wait(5).data == {"ok": True} and b.wait(5).text == "b done"
    broken = jobs.submit("ada", "k", "c", lambda job: iter([1 / 0]), limit=1)
    assert broken.wait(5).error and broken.status == "failed" and "ZeroDivisionError" in broken.result.text
    assert [j.id for j in jobs.of("ada")] == [a.id, broken.id]


# ---- the real thing (slow: real weights) ----------------------------------------------------

@pytest.mark.slow
def test_real_smollm2_lora_learns_the_text(ask, tmp_path):
    """SmolLM2-135M with LoRA on a repetitive text: the held-out loss falls within a few steps."""
    p = tmp_path / "story.md"
    p.write_text(TEXT)
    r = ask(f"/finetune smollm2-135m --file {p} --steps 4 --block-size 64 --batch-size 2")
    assert not r.error, r.text
    d = r.data
    assert d["method"] == "lora" and d["base_model"] == "smollm2-135m" and d["steps"] == 4
    assert 0 < d["trainable_parameters"] < d["parameters"] / 100  # LoRA trains well under 1%
    assert d["val_loss_after"] < d["val_loss_before"]
    assert len(d["generations"]) == 2 and all(g["before"] for g in d["generations"])


def test_register_models_may_ask_for_settings(tmp_path):
    """The core passes the Tutor's settings to a register_models hook that names `settings`;
    hooks that take only `register` keep working (every other built-in)."""
    from tutor.plugins import build_registry
    from tutor.settings import Settings

    seen = []

    class Wants:
        @hookimpl
        def register_models(self, register, settings):
            seen.append(settings.home)

    s = Settings(home=tmp_path / "elsewhere")
    reg = build_registry(extra=[("wants", Wants())], settings=s)
    assert seen == [tmp_path / "elsewhere"] and not reg.failures and "smollm2-135m" in reg.models

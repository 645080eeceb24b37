"""The model cache: single-flight, LRU under a budget, OOM handling, hub / folder loading, hashes.

Mechanics use tiny random GPT-2s (hidden 32, 2 layers) registered by a plugin object in the test;
facts (parameter counts, SmolLM2's behaviour) use the real architectures and weights.
"""

import hashlib
import json
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from tutor import ToolError, hookimpl
from tutor.assets import (GPT2_TIKTOKEN, MANIFEST, AssetError, PackageFile, install_from_archive, package_file,
                          verify_folder)
from tutor.context import Tutor
from tutor.models import CacheError, ModelSpec
from tutor.plugins import build_registry
from tutor.settings import Settings

from conftest import ASSETS


def tiny_gpt2(seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64, n_positions=32))


TINY_BYTES = sum(t.numel() * t.element_size() for t in [*tiny_gpt2().parameters(), *tiny_gpt2().buffers()])


class TinyModels:
    """A test plugin: tiny random models whose loads are counted (and can be slowed or made to fail)."""

    def __init__(self, names=("tiny-a", "tiny-b", "tiny-c"), delay: float = 0.0):
        self.loads: dict[str, int] = {}
        self.names, self.delay = names, delay
        self.fail_next: BaseException | None = None

    def _load(self, name):
        def load(req):
            self.loads[name] = self.loads.get(name, 0) + 1
            time.sleep(self.delay)
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise error
            return tiny_gpt2().to(req.dtype).to(req.device), None
        return load

    @hookimpl
    def register_models(self, register):
        for name in self.names:
            register(ModelSpec(name, f"{name} (tiny random GPT-2 for tests)", "gpt2", "causal-lm",
                               self._load(name), source="built in the test", estimate_bytes=TINY_BYTES))
        register(ModelSpec("tiny-huge", "claims to need 1 TiB", "gpt2", "causal-lm", self._load("tiny-huge"),
                           estimate_bytes=2**40))


def make_tutor(plugin, budget_bytes: float | None = None, **settings) -> Tutor:
    registry = build_registry(allow=["tiny", "offline_models", "hub_models", "models"], extra=[("tiny", plugin)])
    gb = budget_bytes / 2**30 if budget_bytes else None
    return Tutor(Settings(assets_dir=ASSETS, memory_budget_gb=gb, **settings), registry)


# ---- single-flight, LRU, budget ---------------------------------------------------------------


def run_at_once(learner, n: int) -> None:
    """Run `learner` in n threads (it waits on a shared barrier itself) and wait for them all."""
    threads = [threading.Thread(target=learner) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

def test_twenty_threads_asking_at_once_cause_exactly_one_load():
    plugin = TinyModels(delay=0.3)
    tutor = make_tutor(plugin)
    barrier, seen, errors = threading.Barrier(20), [], []

    def learner():
        try:
            barrier.wait()
            with tutor.model("tiny-a") as lm:
                seen.append(id(lm.model))
        except Exception as e:
            errors.append(e)

    run_at_once(learner, 20)
    assert errors == []
    assert plugin.loads == {"tiny-a": 1} and tutor.cache.loads == 1
    assert len(seen) == 20 and len(set(seen)) == 1  # every learner got the same model object


def test_a_failed_load_is_shared_by_its_waiters_and_retried_later():
    plugin = TinyModels(delay=0.3)
    plugin.fail_next = OSError("disk on fire")
    tutor = make_tutor(plugin)
    barrier, errors = threading.Barrier(5), []

    def learner():
        barrier.wait()
        try:
            with tutor.model("tiny-a"):
                pass
        except OSError as e:
            errors.append(e)

    run_at_once(learner, 5)
    assert len(errors) == 5 and plugin.loads == {"tiny-a": 1}
    with tutor.model("tiny-a") as lm:  # the next request tries again, and succeeds
        assert lm.model is not None
    assert plugin.loads == {"tiny-a": 2}


def test_least_recently_used_idle_model_is_evicted_when_the_budget_is_full():
    plugin = TinyModels()
    tutor = make_tutor(plugin, budget_bytes=TINY_BYTES * 2.5)  # room for two
    for name in ("tiny-a", "tiny-b", "tiny-a"):  # a was used after b: b is least recent
        with tutor.model(name):
            pass
    with tutor.model("tiny-c"):
        pass
    keys = [e.key for e in tutor.cache.entries()]
    assert tutor.cache.evictions == ["model:tiny-b:cpu:float32"]
    assert keys == ["model:tiny-a:cpu:float32", "model:tiny-c:cpu:float32"]
    assert tutor.cache.usage() == {"cpu": (2 * TINY_BYTES, int(TINY_BYTES * 2.5))}
    assert tutor.memory_line().startswith("Memory held: cpu ")
    with tutor.model("tiny-b"):  # comes back with a fresh load, evicting a (now the least recent)
        pass
    assert plugin.loads["tiny-b"] == 2 and tutor.cache.evictions[-1] == "model:tiny-a:cpu:float32"


def test_a_model_in_use_is_never_evicted():
    plugin = TinyModels()
    tutor = make_tutor(plugin, budget_bytes=TINY_BYTES * 1.5)  # room for one
    with tutor.model("tiny-a") as a:
        with tutor.model("tiny-b"):  # over budget, but a is in use: kept (a warning is logged)
            a.model(torch.tensor([[1, 2, 3]]))  # a still works
        assert "model:tiny-a:cpu:float32" in tutor.cache
    with tutor.model("tiny-c"):  # now both are idle: the least recent go
        pass
    assert [e.key for e in tutor.cache.entries()] == ["model:tiny-c:cpu:float32"]


def test_a_model_too_big_for_the_whole_budget_is_refused_clearly():
    plugin = TinyModels()
    tutor = make_tutor(plugin, budget_bytes=TINY_BYTES * 2.5)
    with pytest.raises(CacheError, match=r"tiny-huge needs about .* more than the whole cpu budget") as e:
        with tutor.model("tiny-huge"):
            pass
    assert isinstance(e.value, ToolError) and "TUTOR_MEMORY_BUDGET_GB" in str(e.value)
    assert "tiny-huge" not in plugin.loads  # refused before loading anything


def test_a_model_bigger_than_its_estimate_and_the_budget_is_dropped_after_loading():
    plugin = TinyModels()
    tutor = make_tutor(plugin, budget_bytes=TINY_BYTES * 0.5)
    tutor.registry.models["tiny-a"].estimate_bytes = 0  # an unknown size: found out by loading
    with pytest.raises(CacheError, match="more than the whole"):
        with tutor.model("tiny-a"):
            pass
    assert tutor.cache.entries() == []


def test_device_and_dtype_come_from_the_settings_and_can_be_overridden_per_call():
    plugin = TinyModels()
    tutor = make_tutor(plugin, dtype="bfloat16")
    with tutor.model("tiny-a") as lm:
        assert lm.dtype == torch.bfloat16 and next(lm.model.parameters()).dtype == torch.bfloat16
    with tutor.model("tiny-a", dtype="float32") as lm:
        assert next(lm.model.parameters()).dtype == torch.float32 and lm.device == "cpu"
    assert plugin.loads == {"tiny-a": 2}  # one cache entry per (model, device, dtype)
    rows = {r["id"]: r for r in tutor.models_overview()}
    assert sorted(m["dtype"] for m in rows["tiny-a"]["loaded"]) == ["bfloat16", "float32"]
    if not torch.cuda.is_available():
        with pytest.raises(ToolError, match="no CUDA GPU"):
            with tutor.model("tiny-a", device="cuda"):
                pass
    with pytest.raises(ToolError, match="Unknown device 'tpu'"):
        with tutor.model("tiny-a", device="tpu"):
            pass
    with pytest.raises(ToolError, match="Unknown dtype"):
        with tutor.model("tiny-a", dtype="float8"):
            pass


# ---- readers and writers: inference shares a model, changing it excludes -----------------------

def _holding(tutor, shared: bool, entered: threading.Event, release: threading.Event, out: list):
    """A thread that holds tiny-a (shared or not) and runs a forward pass, until `release`."""
    def hold():
        with tutor.model("tiny-a", shared=shared) as lm, torch.inference_mode():
            out.append(lm.model(torch.tensor([[1, 2, 3]])).logits)
            entered.set()
            release.wait(30)
    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def test_a_reader_is_not_blocked_by_another_reader():
    """Two learners' inference on one model at the same moment (the old per-model lock made the
    second wait for the first), with the same result as one alone."""
    tutor = make_tutor(TinyModels())
    entered, release, out = threading.Event(), threading.Event(), []
    first = _holding(tutor, True, entered, release, out)
    try:
        assert entered.wait(30)
        second_entered, second_out = threading.Event(), []
        second = _holding(tutor, True, second_entered, threading.Event(), second_out)
        assert second_entered.wait(10), "a second reader waited for the first"
        second.join(10)
    finally:
        release.set()
        first.join(10)
    assert torch.equal(out[0], second_out[0])


def test_a_writer_waits_for_readers_and_readers_arriving_after_it_wait_for_it():
    tutor = make_tutor(TinyModels())
    entered, release, out = threading.Event(), threading.Event(), []
    reader = _holding(tutor, True, entered, release, out)
    assert entered.wait(30)
    order, writer_in, late_in = [], threading.Event(), threading.Event()

    def writer():
        with tutor.model("tiny-a"):  # exclusive: the default
            order.append("writer")
            writer_in.set()
            time.sleep(0.2)

    def late_reader():
        with tutor.model("tiny-a", shared=True):
            order.append("late reader")
            late_in.set()

    w = threading.Thread(target=writer)
    w.start()
    time.sleep(0.2)
    late = threading.Thread(target=late_reader)
    late.start()
    time.sleep(0.2)
    assert not writer_in.is_set() and not late_in.is_set()  # the writer waits for the reader; the late one for the writer
    release.set()
    for t in (reader, w, late):
        t.join(10)
    assert order == ["writer", "late reader"]


def test_nested_holds_do_not_deadlock_and_a_reader_cannot_upgrade():
    from tutor.models import SharedLock

    lock, waiting, got = SharedLock(), threading.Event(), []

    def write():
        waiting.set()
        with lock.hold():
            got.append(lock.held())

    with lock.hold(shared=True):
        writer = threading.Thread(target=write)
        writer.start()
        waiting.wait(5)
        time.sleep(0.1)  # the writer now waits
        with lock.hold(shared=True):  # the same thread reads again: no deadlock behind the writer
            pass
        with pytest.raises(RuntimeError, match="cannot also take it exclusively"):
            with lock.hold():
                pass
        assert not got
    writer.join(5)
    assert got == [True] and not lock.held()
    other = SharedLock()
    with other.hold(), other.hold(shared=True), other.hold():  # a writer may nest either way
        pass
    assert not other.held()


# ---- out of memory ----------------------------------------------------------------------------

def test_gpu_out_of_memory_during_use_is_reported_and_the_cache_stays_usable(session):
    """torch raises torch.OutOfMemoryError (alias torch.cuda.OutOfMemoryError) on a CUDA OOM;
    raising that very class inside the with-block takes the same path as a real one."""
    from tutor import chat

    plugin = TinyModels()
    tutor = make_tutor(plugin)
    with pytest.raises(ToolError, match=r"The cpu ran out of memory while running tiny-a") as e:
        with tutor.model("tiny-a"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    assert "still fine" in str(e.value)
    [entry] = tutor.cache.entries()
    assert entry.users == 0 and not entry.lock.held()  # released: others can use it
    with tutor.model("tiny-a") as lm:  # still cached: no reload
        assert lm.model(torch.tensor([[1, 2]])).logits.shape == (1, 2, 64)
    assert plugin.loads == {"tiny-a": 1}

    def oom_tool(ctx) -> None:
        """Run tiny-a and run out of memory."""
        with ctx.model("tiny-a"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    from tutor.tools import Tool
    tutor.registry.tools["oom"] = Tool.from_function(oom_tool, name="oom")
    reply = chat.final("/oom", tutor.session("x"))
    assert reply.error and "ran out of memory while running tiny-a" in reply.text
    assert "bug in the plugin" not in reply.text


def test_out_of_memory_while_loading_is_reported_and_the_next_load_can_succeed():
    plugin = TinyModels()
    plugin.fail_next = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
    tutor = make_tutor(plugin)
    with pytest.raises(ToolError, match="ran out of memory while loading tiny-a"):
        with tutor.model("tiny-a"):
            pass
    with tutor.model("tiny-a") as lm:
        assert lm.model is not None


# ---- hub ids, the local HF cache, save_pretrained folders ---------------------------------------

def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", "the", "cat", "sat", "on", "mat"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of our own, so the user's cache never changes a result."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_save_pretrained_folder_loads_through_the_same_path_as_the_hub(tmp_path, hf_cache):
    original = tiny_gpt2(seed=3).eval()
    folder = tmp_path / "my-model"
    original.save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    tutor = make_tutor(TinyModels())
    with tutor.model(str(folder)) as lm:
        ids = lm.tokenizer("the cat sat", return_tensors="pt").input_ids
        assert ids.tolist() == [[1, 2, 3]]
        assert torch.equal(lm.model(ids).logits, original(ids).logits)
        assert type(lm.model).__name__ == "GPT2LMHeadModel"
    [row] = [r for r in tutor.models_overview() if r["id"] == str(folder)]
    assert row["source"] == f"local folder {folder.resolve()}" and row["status"] == "loaded"
    assert row["architecture"] == "gpt2" and row["loaded"][0]["memory_bytes"] == TINY_BYTES
    # a folder registered under a short id of its own (as a fine-tuned model would be)
    from tutor.hub import spec

    tutor.registry.models["my-tune"] = spec("my-tune", path=folder, label="my fine-tune")
    with tutor.model("my-tune") as lm:
        assert torch.equal(lm.model(ids).logits, original(ids).logits)


def put_in_hf_cache(cache: Path, repo: str, folder: Path) -> None:
    """Lay a folder out the way huggingface_hub caches a download: blobs, a snapshot, refs/main."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, snapshot / f.name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)


def test_hf_hub_offline_uses_the_local_cache_and_never_probes_the_network(tmp_path, hf_cache, monkeypatch):
    import tutor.assets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(tutor.assets, "reachable", lambda *a, **k: pytest.fail("probed the network"))
    import huggingface_hub.utils._http as hf_http

    monkeypatch.setattr(hf_http, "http_backoff", lambda *a, **k: pytest.fail(f"HTTP request {a[:2]}"))
    folder = tmp_path / "saved"
    tiny_gpt2(seed=5).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    put_in_hf_cache(hf_cache, "tiny-org/tiny-gpt2", folder)
    tut = make_tutor(TinyModels())
    with tut.model("tiny-org/tiny-gpt2") as lm:  # a hub id, found in the local cache
        assert lm.tokenizer("cat").input_ids == [2]
    with pytest.raises(ToolError, match=r"^gpt2 is not in the local Hugging Face cache, and HF_HUB_OFFLINE=1"):
        with tut.model("gpt2"):
            pass
    rows = {r["id"]: r for r in tut.models_overview()}
    assert rows["gpt2"]["status"] == "unavailable" and "HF_HUB_OFFLINE=1" in rows["gpt2"]["why_unavailable"]
    assert rows["tiny-org/tiny-gpt2"]["status"] == "loaded"


def test_unreachable_hub_names_the_id_and_lists_what_is_available_now(hf_cache, monkeypatch):
    import tutor.assets

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(tutor.assets, "reachable", lambda *a, **k: False)  # the hub does not answer
    tut = make_tutor(TinyModels())
    with pytest.raises(ToolError) as e:
        with tut.model("distilgpt2"):
            pass
    message = str(e.value)
    assert message.startswith("distilgpt2 is not in the local Hugging Face cache, and the hub "
                              "(huggingface.co) cannot be reached.")
    available = message.split("Available now: ")[1].rstrip(".").split(", ")
    assert {"tiny-a", "distilgpt2-arch", "smollm2-135m", "minilm-l6"} <= set(available)
    assert "distilgpt2" not in available and "gpt2" not in available
    with pytest.raises(ToolError, match=r"not in the local .* Did you mean smollm2"):  # a typo of a known id
        with tut.model("smolm2-135m"):
            pass
    with pytest.raises(ToolError, match="neither a model id nor a folder"):
        with tut.model("what is a model??"):
            pass


def test_registered_parameter_counts_match_the_real_architectures():
    """Counted on the meta device from each architecture's config: no weights needed.
    (SmolLM2's count is checked on its real weights in the slow test at the end.)"""
    from transformers import AutoConfig, AutoModel, GPT2Config, GPT2LMHeadModel

    from tutor.assets import minilm_folder

    from transformers import BertConfig, BertModel, T5Config, T5ForConditionalGeneration

    configs = {"distilgpt2": (GPT2LMHeadModel, GPT2Config(n_layer=6)), "gpt2": (GPT2LMHeadModel, GPT2Config()),
               "gpt2-medium": (GPT2LMHeadModel, GPT2Config(n_embd=1024, n_layer=24, n_head=16)),
               "bert-base-uncased": (BertModel, BertConfig()), "t5-small": (T5ForConditionalGeneration, T5Config())}
    registry = make_tutor(TinyModels()).registry
    configs["distilgpt2-arch"] = configs["distilgpt2"]
    configs["minilm-l6"] = (AutoModel, AutoConfig.from_pretrained(minilm_folder(ASSETS)))
    for model_id, (cls, config) in configs.items():
        with torch.device("meta"):
            model = cls.from_config(config) if cls is AutoModel else cls(config)
        assert registry.models[model_id].parameters == sum(p.numel() for p in model.parameters()), model_id


# ---- hashes -------------------------------------------------------------------------------------

def test_a_corrupted_asset_is_refused_with_file_expected_and_found_and_removed(tmp_path):
    good = package_file(GPT2_TIKTOKEN, ASSETS)
    assets = tmp_path / "assets"
    copy = assets / GPT2_TIKTOKEN.dist / GPT2_TIKTOKEN.version / GPT2_TIKTOKEN.member
    copy.parent.mkdir(parents=True)
    data = bytearray(good.read_bytes())
    data[1000] ^= 0xFF
    copy.write_bytes(bytes(data))
    found = hashlib.sha256(data).hexdigest()
    with pytest.raises(AssetError) as e:
        package_file(GPT2_TIKTOKEN, assets)
    assert str(copy) in str(e.value)
    assert f"expected {GPT2_TIKTOKEN.sha256}, found {found}" in str(e.value)
    assert not copy.exists()  # refused and removed, so it cannot be used by mistake later
    assert [p for p in assets.rglob("*") if p.is_file()] == []


def test_a_bad_archive_from_the_index_writes_nothing(tmp_path):
    member = "pkg/data.bin"
    asset = PackageFile("tiny-asset-pkg", "1.0", member, hashlib.sha256(b"the right bytes").hexdigest(), "MIT")
    archive = tmp_path / "tiny_asset_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(member, b"the wrong bytes")
    assets = tmp_path / "assets"
    import tutor.assets

    real_known = tutor.assets._known
    tutor.assets._known = lambda: [asset]
    try:
        with pytest.raises(AssetError, match=r"pkg/data.bin in tiny_asset_pkg-1.0-py3-none-any.whl: sha256 mismatch"):
            install_from_archive(archive, asset, assets)
    finally:
        tutor.assets._known = real_known
    assert not assets.exists() or list(assets.rglob("*")) == []


def test_a_converted_folder_whose_file_changed_is_refused_and_removed(tmp_path):
    folder = tmp_path / "converted"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    manifest = {"files": {"config.json": hashlib.sha256(b'{"a": 1}').hexdigest()}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    (folder / "config.json").write_text('{"a": 2}')
    with pytest.raises(AssetError, match=r"config.json: sha256 mismatch, expected [0-9a-f]{64}, found [0-9a-f]{64}"):
        verify_folder(folder)
    assert not folder.exists()


# ---- tutor models, /models, pull ----------------------------------------------------------------

def test_tutor_models_json_lists_every_model_with_its_facts(capsys):
    from tutor.cli import main

    assert main(["models", "--json", "--home", str(ASSETS.parent / "unused-home")]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_id = {r["id"]: r for r in rows}
    assert {"smollm2-135m", "minilm-l6", "distilgpt2-arch", "distilgpt2", "gpt2", "gpt2-medium",
            "bert-base-uncased", "t5-small"} <= set(by_id)
    for r in rows:
        assert {"id", "architecture", "parameters", "source", "sha256_verified", "status", "label", "licence",
                "size_on_disk_bytes", "loaded", "why_unavailable"} <= set(r)
    assert by_id["distilgpt2-arch"]["label"] == "DistilGPT2 architecture, untrained weights"
    assert by_id["smollm2-135m"]["sha256_verified"] is True and by_id["smollm2-135m"]["architecture"] == "llama"
    assert by_id["gpt2"]["status"] == "unavailable"  # HF_HUB_OFFLINE=1 in tests, empty HF cache


def test_models_command_in_the_chat_shows_the_same_rows(ask):
    reply = ask("/models")
    assert not reply.error
    ids = [r["id"] for r in reply.data["models"]]
    assert "smollm2-135m" in ids and reply.table.columns[0] == "id"
    one = ask("/models distilgpt2-arch")
    assert [r["id"] for r in one.data["models"]] == ["distilgpt2-arch"]
    assert "untrained weights" in one.table.markdown()


def test_pull_prepares_a_model_and_explains_what_it_cannot_pull(capsys):
    from tutor.cli import main

    assert main(["models", "pull", "distilgpt2-arch"]) == 0
    assert "distilgpt2-arch: ready" in "".join(capsys.readouterr())
    assert main(["models", "pull", "gpt2"]) == 1  # HF_HUB_OFFLINE=1
    assert "gpt2: FAILED: gpt2 is not in the local Hugging Face cache, and HF_HUB_OFFLINE=1" in "".join(capsys.readouterr())
    assert main(["models", "pull"]) == 2
    assert "tutor models pull --all" in capsys.readouterr().err


# ---- the real SmolLM2 ---------------------------------------------------------------------------

@pytest.mark.slow  # 5-15 s on 2 busy cores (after the one-off conversion)
def test_smollm2_loads_from_its_converted_folder_and_knows_paris(tutor):
    start = time.perf_counter()
    with tutor.model("smollm2-135m") as lm:
        seconds = time.perf_counter() - start
        ids = lm.tokenizer("The capital of France is", return_tensors="pt").input_ids
        with torch.no_grad():
            next_id = lm.model(ids).logits[0, -1].argmax().item()
        assert lm.tokenizer.decode([next_id]).strip() == "Paris"
        assert sum(p.numel() for p in lm.model.parameters()) == lm.spec.parameters
        assert lm.model.config.num_hidden_layers == 30 and lm.model.config.hidden_size == 576
    print(f"smollm2 load: {seconds:.1f} s")

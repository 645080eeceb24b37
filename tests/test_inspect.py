"""/inspect, /attention, /lens, /embed: facts checked against transformers' own outputs.

Mechanics run on tiny random models (hidden 32, 2 layers) registered by a test-only plugin;
facts about the real models (DistilGPT2's architecture, SmolLM2, MiniLM) are marked slow.
"""

from __future__ import annotations

import hashlib
import os
import threading
import types
import uuid
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from tutor import chat, hookimpl
from tutor.anatomy import attention_implementation, recording
from tutor.models import ModelSpec

# the verified assets every test shares (the same folder tests/conftest.py uses)
ASSETS = Path(os.environ.get("TUTOR_TEST_ASSETS_DIR", Path.home() / ".cache" / "tutor-test-assets"))


@lru_cache(maxsize=1)
def _gpt2_tokenizer():
    from tutor.assets import GPT2_TIKTOKEN, package_file
    from tutor.tokenizers import gpt2_transformers_tokenizer

    return gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, ASSETS)))


def _tiny(kind: str):
    def load(req):
        from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        if kind == "gpt2":
            model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=16))
        elif kind == "llama":
            model = LlamaForCausalLM(LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
                                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                 max_position_embeddings=64, tie_word_embeddings=True))
        else:
            model = BertModel(BertConfig(vocab_size=50257, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, max_position_embeddings=64))
        return model.to(req.device), _gpt2_tokenizer()
    return load


@hookimpl
def _register_tiny_models(register):
    for kind, task in [("gpt2", "causal-lm"), ("llama", "causal-lm"), ("bert", "encoder")]:
        register(ModelSpec(f"tiny-{kind}", f"tiny random {kind} (test stand-in, untrained weights)", kind, task,
                           _tiny(kind), source="built in the test suite"))


TINY_MODELS = types.SimpleNamespace(register_models=_register_tiny_models)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A Tutor whose registry has the built-in plugins plus the tiny test models."""
    from tutor.context import Tutor
    from tutor.plugins import build_registry
    from tutor.settings import Settings

    mp = pytest.MonkeyPatch()
    mp.setenv("TUTOR_ENTRY_POINTS", "0")
    mp.setenv("TIKTOKEN_CACHE_DIR", str(ASSETS / "tiktoken"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        settings = Settings(home=tmp_path_factory.mktemp("home"), assets_dir=ASSETS, offline="yes", device="cpu")
        yield Tutor(settings, build_registry(extra=[("tiny_models", TINY_MODELS)]))
    finally:
        mp.undo()


@pytest.fixture
def ask(tiny):
    session = tiny.session(uuid.uuid4().hex)
    return lambda message: chat.final(message, session)


def _hooks_left(model) -> int:
    """Our hooks still attached (transformers keeps its own output-capturing hooks; those are not ours)."""
    hooks = [h for m in model.modules() for h in [*m._forward_hooks.values(), *m._forward_pre_hooks.values()]]
    return sum(getattr(h, "__module__", "") == "tutor.anatomy" for h in hooks)


def _fingerprint(model) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


# ---- /inspect MODEL: the tree ------------------------------------------------------------------

@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama", "tiny-bert"])
def test_tree_total_equals_num_parameters(ask, tiny, model):
    reply = ask(f"/inspect {model}")
    assert not reply.error, reply.text
    with tiny.model(model) as lm:
        assert reply.data["total_parameters"] == lm.model.num_parameters()
        names = {n or "(model)" for n, _ in lm.model.named_modules()}
    assert {m["name"] for m in reply.data["modules"]} == names
    assert reply.data["family"] == model.split("-")[1]
    assert sum(b["parameters"] for b in reply.data["blocks"]) < reply.data["total_parameters"]


def test_tree_formula_and_tied_weights(ask):
    data = ask("/inspect tiny-gpt2").data
    by_name = {m["name"]: m for m in data["modules"]}
    assert by_name["transformer.h.0.attn.c_attn"]["formula"] == "32 x 96 + 96 = 3,168"
    assert by_name["transformer.h.0.ln_1"]["formula"] == "32 + 32 = 64"
    assert by_name["lm_head"]["shared_with"] == ["transformer.wte.weight"]
    assert by_name["lm_head"]["counted"] == 0 and by_name["transformer.wte"]["counted"] == 50257 * 32
    assert data["tied"] == [{"name": "lm_head", "shared_with": ["transformer.wte.weight"], "parameters": 50257 * 32}]
    llama = {m["name"]: m for m in ask("/inspect tiny-llama").data["modules"]}
    assert llama["model.layers.0.self_attn.k_proj"]["formula"] == "32 x 16 = 512"  # 2 kv heads of 8: GQA
    assert llama["model.layers.0.input_layernorm"]["formula"] == "32 = 32"  # RMSNorm: gamma only


def test_tree_collapses_later_blocks_unless_full(ask):
    short, full = ask("/inspect tiny-gpt2"), ask("/inspect tiny-gpt2 --full")
    assert any("transformer.h.1 ..." in str(r[0]) for r in short.table.rows)
    assert any(r[0] == "transformer.h.1.attn.c_attn" for r in full.table.rows)


# ---- hooks agree with transformers' own outputs ---------------------------------------------------

@pytest.mark.parametrize("model,final_norm", [("tiny-gpt2", "transformer.ln_f"), ("tiny-llama", "model.norm")])
def test_residual_stream_hooks_equal_output_hidden_states(tiny, model, final_norm):
    with tiny.model(model) as lm:
        inputs = lm.tokenizer("The cat sat on the mat", return_tensors="pt")
        blocks = [n for n, m in lm.model.named_modules() if n.count(".") == 2 and n.rsplit(".", 1)[1].isdigit()]
        with recording(lm.model, keep=tuple(blocks), only=tuple(blocks)) as calls, torch.no_grad():
            out = lm.model(**inputs, output_hidden_states=True)
        outs = {c.name: c for c in calls}
        hidden = out.hidden_states
        assert len(hidden) == len(blocks) + 1
        torch.testing.assert_close(outs[blocks[0]].input, hidden[0])
        for i, name in enumerate(blocks[:-1]):
            torch.testing.assert_close(outs[name].output, hidden[i + 1])
        # transformers' last hidden state is after the final norm
        norm = lm.model.get_submodule(final_norm)
        torch.testing.assert_close(norm(outs[blocks[-1]].output), hidden[-1])
        assert _hooks_left(lm.model) == 0


# ---- /inspect --order -----------------------------------------------------------------------------

def test_order_lists_hooks_in_firing_order_and_never_ran(ask, tiny):
    reply = ask("/inspect tiny-gpt2 --order The cat sat")
    assert not reply.error, reply.text
    order = reply.data["order"]
    # a forward hook fires when its module finishes: parts before the container
    assert order.index("transformer.h.0.ln_1") < order.index("transformer.h.0.attn.c_attn") \
        < order.index("transformer.h.0.attn") < order.index("transformer.h.0") < order.index("transformer.h.1.ln_1")
    assert order[-1] == ""  # the whole model finishes last
    call_order = reply.data["call_order"]
    assert call_order[0] == "" and call_order.index("transformer.h.0.attn") < call_order.index(
        "transformer.h.0.attn.c_attn")
    never = {n["name"]: n["reason"] for n in reply.data["never_ran"]}
    assert set(never) == {"transformer.h", "transformer.h.0.attn.attn_dropout", "transformer.h.1.attn.attn_dropout"}
    assert "scaled_dot_product_attention" in never["transformer.h.0.attn.attn_dropout"]
    c_attn = next(c for c in reply.data["calls"] if c["name"] == "transformer.h.0.attn.c_attn")
    assert c_attn["inputs"] == [[1, 3, 32]] or c_attn["inputs"] == [(1, 3, 32)]
    assert tuple(c_attn["outputs"][0]) == (1, 3, 96)
    with tiny.model("tiny-gpt2") as lm:
        assert lm.model.config._attn_implementation == "sdpa"
        assert _hooks_left(lm.model) == 0


def test_order_with_eager_attention_explains_and_restores(ask, tiny):
    reply = ask("/inspect tiny-gpt2 --order --attn eager The cat sat")
    assert reply.data["attn_implementation"] == "eager"
    never = {n["name"]: n["reason"] for n in reply.data["never_ran"]}
    assert "applies dropout itself" in never["transformer.h.0.attn.attn_dropout"]
    with tiny.model("tiny-gpt2") as lm:
        assert lm.model.config._attn_implementation == "sdpa"


# ---- /inspect MODEL LAYER PROMPT ------------------------------------------------------------------

def test_layer_stats_match_hidden_states(ask, tiny):
    data = ask("/inspect tiny-gpt2 h.0 The cat sat on the mat").data
    assert data["layer"] == "transformer.h.0"
    with tiny.model("tiny-gpt2") as lm, torch.no_grad():
        hidden = lm.model(**lm.tokenizer("The cat sat on the mat", return_tensors="pt"),
                          output_hidden_states=True).hidden_states[1]
    assert data["shape"] == list(hidden.shape)
    assert data["mean"] == pytest.approx(hidden.mean().item(), abs=1e-5)
    assert data["max"] == pytest.approx(hidden.max().item(), abs=1e-5)
    assert sum(data["histogram"]["counts"]) == hidden.numel()
    assert data["slice"][0][0] == pytest.approx(hidden[0, 0, 0].item(), abs=1e-4)


@pytest.mark.parametrize("model,layer,kind", [("tiny-gpt2", "transformer.h.1.ln_2", "LayerNorm"),
                                              ("tiny-llama", "layers.0.input_layernorm", "RMSNorm")])
def test_norm_layer_before_and_after(ask, model, layer, kind):
    reply = ask(f"/inspect {model} {layer} The cat sat on the mat")
    assert not reply.error, reply.text
    norm = reply.data["norm"]
    assert norm["kind"] == kind
    assert norm["recomputed_max_abs_error"] < 1e-4
    assert norm["gamma"]["mean"] == pytest.approx(1.0)  # a freshly built norm starts with gamma = 1
    eps = norm["eps"]
    for p in norm["per_position"]:  # normalised: variance 1 (LayerNorm) or RMS 1 (RMSNorm), up to eps
        if kind == "LayerNorm":
            assert p["mean_normalised"] == pytest.approx(0, abs=1e-5)
            assert p["var_normalised"] == pytest.approx(p["var_before"] / (p["var_before"] + eps), rel=1e-3)
        else:  # mean^2 + var = mean of squares
            squares = p["rms_before"] ** 2
            assert p["mean_normalised"] ** 2 + p["var_normalised"] == pytest.approx(squares / (squares + eps), rel=1e-3)
    assert (norm["beta"] is None) == (kind == "RMSNorm")
    assert reply.figure is not None


def test_layer_that_never_ran_says_why(ask):
    data = ask("/inspect tiny-gpt2 h.0.attn.attn_dropout hi").data
    assert data["ran"] is False and "never called" in data["reason"]


def test_unknown_and_ambiguous_layer(ask):
    reply = ask("/inspect tiny-gpt2 h.0.ln_3 hi")
    assert reply.error and "transformer.h.0.ln_1" in reply.text
    reply = ask("/inspect tiny-gpt2 ln_1 hi")
    assert reply.error and "matches 2 modules" in reply.text
    reply = ask("/inspect tiny-gpt2 h.0.ln_1")
    assert reply.error and "Give a prompt" in reply.text


# ---- /attention -----------------------------------------------------------------------------------

def test_attention_equals_softmax_of_queries_and_keys(ask, tiny):
    prompt = "The cat sat on the mat"
    data = ask(f"/attention tiny-gpt2 --layer 1 {prompt}").data
    assert data["heads"] == 4 and data["causal"] is True and len(data["weights"]) == 4
    with tiny.model("tiny-gpt2") as lm:  # recompute from c_attn's output: softmax(QK^T / sqrt(d)), causal
        name = "transformer.h.1.attn.c_attn"
        with recording(lm.model, keep=(name,), only=(name,)) as calls, torch.no_grad():
            lm.model(**lm.tokenizer(prompt, return_tensors="pt"))
        q, k, _ = calls[0].output[0].split(32, dim=-1)
        q, k = (t.view(-1, 4, 8).transpose(0, 1) for t in (q, k))  # (heads, T, 8)
        scores = q @ k.transpose(-1, -2) / 8 ** 0.5
        scores = scores.masked_fill(torch.triu(torch.ones_like(scores[0]), 1).bool(), float("-inf"))
        expected = torch.softmax(scores, -1)
        assert lm.model.config._attn_implementation == "sdpa"  # restored after the eager run
    torch.testing.assert_close(torch.tensor(data["weights"]), expected, atol=1e-4, rtol=0)


def test_attention_one_head_encoder_and_ranges(ask):
    one = ask("/attention tiny-bert --head 2 The cat sat").data
    assert one["head"] == 2 and len(one["weights"]) == 1 and one["causal"] is False
    rows = torch.tensor(one["weights"][0]).sum(-1)
    torch.testing.assert_close(rows, torch.ones_like(rows), atol=1e-3, rtol=0)
    assert "between 0 and 1" in ask("/attention tiny-gpt2 --layer 2 hi").text
    assert "between 0 and 3" in ask("/attention tiny-gpt2 --head 4 hi").text
    assert "at least 0" in ask("/attention tiny-gpt2 --layer -1 hi").text


# ---- /lens ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama"])
def test_lens_last_layer_equals_logits(ask, tiny, model):
    prompt = "The capital of France is"
    reply = ask(f"/lens {model} --top 3 {prompt}")
    assert not reply.error, reply.text
    data = reply.data
    assert data["last_layer_max_abs_diff"] < 1e-4
    assert [layer["layer"] for layer in data["layers"]] == ["embeddings", 0, 1]
    with tiny.model(model) as lm, torch.no_grad():
        logits = lm.model(**lm.tokenizer(prompt, return_tensors="pt")).logits[0, -1]
    assert data["prediction_id"] == int(logits.argmax())
    assert data["layers"][-1]["top"][0]["id"] == int(logits.argmax()) and data["layers"][-1]["final_token_rank"] == 0
    assert data["layers"][-1]["top"][0]["p"] == pytest.approx(torch.softmax(logits, -1).max().item(), abs=1e-4)
    assert len(data["layers"][0]["top"]) == 3


def test_lens_bad_input(ask):
    assert "encoder" in ask("/lens tiny-bert hi").text
    assert "between -2 and 1" in ask("/lens tiny-gpt2 --position 5 a b").text


# ---- /embed ---------------------------------------------------------------------------------------

def test_embed_neighbours_are_cosine_nearest(ask, tiny):
    data = ask('/embed tiny-gpt2 --top 3 " cat"').data
    piece = data["tokens"][0]
    assert piece["token"] == " cat" and len(piece["neighbours"]) == 3
    with tiny.model("tiny-gpt2") as lm:
        w = lm.model.transformer.wte.weight
        cos = torch.nn.functional.cosine_similarity(w, w[piece["id"]][None], dim=-1)
        cos[piece["id"]] = -2
        assert [n["id"] for n in piece["neighbours"]] == cos.topk(3).indices.tolist()
        assert piece["neighbours"][0]["cosine"] == pytest.approx(cos.max().item(), abs=1e-5)
    assert data["positions"]["positions"] == 16
    assert ask("/embed tiny-llama cat").data["positions"] is None
    assert len(ask("/embed tiny-gpt2 unhappiness").data["tokens"]) > 1


# ---- bad input, safety of the shared model ----------------------------------------------------------

def test_bad_input_answers(ask):
    reply = ask("/inspect nosuchmodel")
    assert reply.error and "tiny-gpt2" in reply.text  # lists the available models
    reply = ask("/inspect tiny-gpt2 --order " + "word " * 40)
    assert reply.error and "at most 16 tokens" in reply.text and "context window" in reply.text
    reply = ask("/inspect tiny-gpt2 --order")
    assert reply.error and "Give a prompt" in reply.text
    assert ask("/attention tiny-gpt2 " + "a " * 70).error  # more than a heatmap can show
    assert ask("/embed tiny-gpt2").error


def test_tools_leave_weights_mode_and_attention_unchanged(ask, tiny):
    with tiny.model("tiny-gpt2") as lm:
        before = _fingerprint(lm.model)
    for command in ["/inspect tiny-gpt2 --order --attn eager hi there", "/inspect tiny-gpt2 h.0.ln_1 hi",
                    "/attention tiny-gpt2 hi there", "/lens tiny-gpt2 hi there", "/embed tiny-gpt2 hi"]:
        assert not ask(command).error, command
    with tiny.model("tiny-gpt2") as lm:
        assert _fingerprint(lm.model) == before
        assert not any(m.training for m in lm.model.modules())
        assert lm.model.config._attn_implementation == "sdpa"
        assert _hooks_left(lm.model) == 0


def test_hooks_removed_and_attention_restored_when_forward_fails(ask, tiny):
    with tiny.model("tiny-gpt2") as lm:
        mlp = lm.model.transformer.h[1].mlp
        mlp.forward = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))
    try:
        for command in ["/inspect tiny-gpt2 --order --attn eager hi", "/lens tiny-gpt2 hi",
                        "/attention tiny-gpt2 hi", "/inspect tiny-gpt2 h.0.ln_1 hi"]:
            reply = ask(command)
            assert reply.error and "boom" in reply.text, command
    finally:
        del mlp.forward
    with tiny.model("tiny-gpt2") as lm:
        assert _hooks_left(lm.model) == 0
        assert lm.model.config._attn_implementation == "sdpa"


def test_recording_removes_hooks_on_exception_and_honours_cancel(tiny):
    with tiny.model("tiny-gpt2") as lm:
        with pytest.raises(ValueError):
            with recording(lm.model):
                raise ValueError("inside")
        assert _hooks_left(lm.model) == 0
        stop = threading.Event()
        stop.set()
        from tutor import ToolError
        with pytest.raises(ToolError, match="Stopped"):
            with recording(lm.model, cancel=stop), torch.no_grad():
                lm.model(**lm.tokenizer("hi", return_tensors="pt"))
        assert _hooks_left(lm.model) == 0
        with pytest.raises(RuntimeError):
            with attention_implementation(lm.model, "eager"):
                assert lm.model.config._attn_implementation == "eager"
                raise RuntimeError
        assert lm.model.config._attn_implementation == "sdpa"


# ---- the real models (slow: each loads real or full-size weights) -----------------------------------

@pytest.mark.slow
def test_distilgpt2_architecture_facts(ask):
    data = ask("/inspect distilgpt2-arch").data
    assert data["total_parameters"] == data["num_parameters"] == 81_912_576
    by_name = {m["name"]: m for m in data["modules"]}
    assert by_name["transformer.h.0.attn.c_attn"]["formula"] == "768 x 2304 + 2304 = 1,771,776"
    assert by_name["lm_head"]["shared_with"] == ["transformer.wte.weight"]
    assert {b["parameters"] for b in data["blocks"]} == {7_087_872} and len(data["blocks"]) == 6


@pytest.mark.slow
def test_smollm2_facts(ask):
    tree = ask("/inspect smollm2-135m").data
    assert tree["total_parameters"] == tree["num_parameters"] == 134_515_008
    assert tree["family"] == "llama" and tree["tied"][0]["shared_with"] == ["model.embed_tokens.weight"]
    order = ask("/inspect smollm2-135m --order The cat sat on the mat").data
    assert [n["name"] for n in order["never_ran"]] == ["model.layers"]
    assert order["order"][:2] == ["model.embed_tokens", "model.rotary_emb"]
    lens = ask("/lens smollm2-135m The capital of France is").data
    assert lens["last_layer_max_abs_diff"] < 1e-3 and lens["prediction"] == " Paris"
    assert ask("/attention smollm2-135m --layer 29 --head 8 hi there").data["causal"] is True


@pytest.mark.slow
def test_minilm_facts(ask):
    tree = ask("/inspect minilm-l6").data
    assert tree["total_parameters"] == tree["num_parameters"] == 22_713_216 and tree["family"] == "bert"
    assert tree["tied"] == []
    assert ask("/attention minilm-l6 --layer 5 the cat sat").data["causal"] is False
    assert ask("/lens minilm-l6 hi").error
    embed = ask("/embed minilm-l6 cat").data
    assert embed["positions"]["positions"] == 512 and embed["tokens"][0]["neighbours"][0]["token"] == "cats"


@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama"])
def test_lens_every_layer_and_grid_cell_equals_the_norm_and_unembedding_of_that_stream(ask, tiny, model):
    """The batched unembedding gives, cell by cell, what one layer at a time gives; a position
    before the grid's columns (--position 0) is read from the same pass."""
    from plugins.lens import GRID_POSITIONS, lens_parts

    prompt = " ".join(["cat", "dog", "sat", "on", "the", "mat"] * 2)  # 12 tokens: more than the grid shows
    reply = ask(f"/lens {model} --position 0 --top 2 {prompt}")
    assert not reply.error, reply.text
    data = reply.data
    with tiny.model(model) as lm, torch.no_grad():
        ids = lm.tokenizer(prompt, return_tensors="pt")
        assert ids["input_ids"].shape[1] > GRID_POSITIONS
        out = lm.model(**ids, output_hidden_states=True)
        norm, unembed = lens_parts(lm.model)
        # block i's output is hidden_states[i + 1], except the last one, which HF returns normed
        streams = list(out.hidden_states[:-1])
        for i, layer in enumerate(data["layers"][:-1]):
            logits = unembed(norm(streams[i][0, 0]))
            assert layer["top"][0]["id"] == int(logits.argmax()), i
        for i, row in enumerate(data["grid"]["top1"][:-1]):
            logits = unembed(norm(streams[i][0, data["grid"]["positions"]]))
            assert row == [lm.tokenizer.decode([int(t)]) for t in logits.argmax(-1)], i
        assert data["grid"]["top1"][-1] == [lm.tokenizer.decode([int(t)]) for t in out.logits[0, -GRID_POSITIONS:].argmax(-1)]
    assert data["layers"][-1]["top"][0]["id"] == int(out.logits[0, 0].argmax())


@pytest.mark.parametrize("chunk", [None, 7])
@pytest.mark.parametrize("model", ["tiny-gpt2", "tiny-llama"])
def test_lens_probabilities_equal_softmax_of_each_layers_logits(ask, tiny, model, chunk, monkeypatch):
    """lens_read's exp(logit - logsumexp) gives, cell by cell, what softmax over that layer's
    full logits gives: each top-k probability, the prediction's rank and probability, and every
    chart cell (--positions widens the chart). With slices of 7 rows (not a divisor of the
    vocabulary) the per-slice maxima and sums combine to the same numbers."""
    import tutor.builtin.lens

    if chunk:
        monkeypatch.setattr(tutor.builtin.lens, "VOCAB_CHUNK", chunk)
    prompt = "one two three four five six seven"
    data = ask(f"/lens {model} --top 4 --positions 5 {prompt}").data
    with tiny.model(model) as lm, torch.no_grad():
        out = lm.model(**lm.tokenizer(prompt, return_tensors="pt"), output_hidden_states=True)
        norm, unembed = __import__("plugins.lens", fromlist=["lens_parts"]).lens_parts(lm.model)
        streams = [unembed(norm(h[0])) for h in out.hidden_states[:-1]] + [out.logits[0]]  # (T, vocab) each
    positions = data["grid"]["positions"]
    assert len(positions) == 5 and positions[-1] == len(data["tokens"]) - 1
    final = data["prediction_id"]
    for i, logits in enumerate(streams):
        probs = torch.softmax(logits, -1)
        p, ids = probs[-1].topk(4)
        layer = data["layers"][i]
        assert [t["id"] for t in layer["top"]] == ids.tolist(), i
        assert [t["p"] for t in layer["top"]] == pytest.approx(p.tolist(), abs=2e-5)
        assert layer["final_token_p"] == pytest.approx(float(probs[-1, final]), abs=2e-5)
        assert layer["final_token_rank"] == int((logits[-1] > logits[-1, final]).sum())
        assert data["grid"]["p"][i] == pytest.approx(probs[positions].max(-1).values.tolist(), abs=2e-5)

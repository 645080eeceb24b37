"""/generate, /next and the batching decoder, checked against transformers' own generate.

Mechanics run on a tiny random GPT-2 (hidden 32, 2 layers, untrained, with GPT-2's real
tokenizer); facts about a real model (smollm2-135m) are marked slow.
"""

import threading
import time

import pytest
import torch

from tiny_gpt2 import TINY, tiny_gpt2_tutor
from tutor import ToolError, chat
from tutor.generation import Sampling, decoder_for, sampling_from_options

EOS = 50256


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A Tutor with the built-in tools plus a tiny random GPT-2 (a stand-in, labelled as one)."""
    return tiny_gpt2_tutor(tmp_path_factory.mktemp("home"), max_new_tokens=200)


def ask(tutor, message, learner="learner"):
    return chat.final(message, tutor.session(learner))


def reference(tutor, model_id, prompt_ids, n, **kw):
    """transformers' own generate on the same model: the new ids."""
    with tutor.model(model_id) as lm:
        ids = torch.tensor([prompt_ids], device=lm.device)
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                eos_token_id=kw.pop("eos", EOS), pad_token_id=0, **kw)
    return out[0, len(prompt_ids):].tolist()


# ---- correctness against transformers ------------------------------------------------------------

def test_greedy_equals_model_generate(tiny):
    reply = ask(tiny, f"/generate {TINY} --greedy --max-tokens 30 The cat sat on the")
    assert not reply.error, reply.text
    d = reply.data
    assert d["model"] == TINY and d["stop_reason"] in ("max_tokens", "eos")
    assert d["ids"] == reference(tiny, TINY, d["prompt_ids"], 30, do_sample=False)
    assert [s["id"] for s in d["steps"]] == d["ids"]
    assert all(0 < s["p"] <= 1 and s["top"][0][1] >= s["p"] for s in d["steps"])  # greedy = the top token


def test_seeded_sampling_is_reproducible_and_equals_generate(tiny):
    cmd = f"/generate {TINY} --max-tokens 25 --temperature 0.8 --top-k 40 --top-p 0.9 --repetition-penalty 1.3 --seed 7 Once upon a time"
    first, second = ask(tiny, cmd, "a"), ask(tiny, cmd, "b")
    assert first.data["ids"] == second.data["ids"]
    assert first.data["sampling"]["seed"] == 7
    torch.manual_seed(7)  # generate samples from the global generator; ours has its own, seeded the same
    expected = reference(tiny, TINY, first.data["prompt_ids"], 25, do_sample=True, temperature=0.8, top_k=40,
                         top_p=0.9, repetition_penalty=1.3)
    assert first.data["ids"] == expected
    other = ask(tiny, cmd.replace("--seed 7", "--seed 8"), "c")
    assert other.data["ids"] != first.data["ids"]
    plain = [ask(tiny, f"/generate {TINY} --seed 1 --max-tokens 10 Hi", who).data for who in "de"]
    assert plain[0]["ids"] == plain[1]["ids"] and plain[0]["sampling"]["temperature"] == 1.0


def test_processors_are_transformers_own():
    from transformers import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
                              TopPLogitsWarper)

    s = Sampling(greedy=False, temperature=0.5, top_k=3, top_p=0.8, repetition_penalty=1.2, seed=1)
    assert [type(p) for p in s.processors()] == [RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                   TopKLogitsWarper, TopPLogitsWarper]
    assert len(Sampling().processors()) == 0  # plain greedy: argmax of the raw logits


def test_next_distributions_match_the_definitions(tiny):
    """Each stage against its textbook definition, computed here by hand."""
    from tutor.builtin.next_token import distributions

    torch.manual_seed(1)
    logits = torch.randn(1, 1000) * 3
    stages = dict((name, (p, removed)) for name, p, removed in distributions(logits, 0.5, 10, 0.6))
    assert torch.allclose(stages["raw"][0], torch.softmax(logits[0], -1))
    hot = torch.softmax(logits[0] / 0.5, -1)
    assert torch.allclose(stages["temperature"][0], hot)
    top10 = hot.topk(10).indices
    assert set(torch.nonzero(stages["top-k"][0]).flatten().tolist()) == set(top10.tolist())
    assert stages["top-k"][1] == pytest.approx(1 - float(hot[top10].sum()), abs=1e-5)
    renorm = torch.zeros_like(hot)
    renorm[top10] = hot[top10] / hot[top10].sum()
    kept = torch.nonzero(stages["top-p"][0]).flatten()
    ordered = renorm.sort(descending=True).values
    need = int((ordered.cumsum(0) < 0.6).sum()) + 1  # the fewest tokens reaching 0.6
    assert len(kept) == need
    assert float(stages["top-p"][0].sum()) == pytest.approx(1.0)


def test_next_chart_and_data(tiny):
    reply = ask(tiny, f"/next {TINY} --temperature 0.5 --top-k 5 --top-p 0.9 The cat sat on the")
    assert not reply.error, reply.text
    d = reply.data
    assert reply.figure is not None and len(reply.figure.axes) == 4
    assert d["kept"]["top-k"] == 5 and 1 <= d["kept"]["top-p"] <= 5
    assert 0 < d["removed_mass"]["top-k"] < 1
    raw = [t["raw"] for t in d["tokens"]]
    assert raw == sorted(raw, reverse=True) and d["greedy"]["id"] == d["tokens"][0]["id"]
    assert sum(1 for t in d["tokens"] if t["top-k"] > 0) == 5
    assert ask(tiny, f"/next {TINY} --temperature 0 hi").data["tokens"][0]["temperature"] == 1.0


# ---- streaming, stop, concurrency ---------------------------------------------------------------------

def test_streams_one_reply_per_token_then_the_final(tiny):
    replies = list(chat.respond(f"/generate {TINY} --max-tokens 12 Hello there", tiny.session("s")))
    final = replies[-1]
    assert final.done and all(not r.done for r in replies[:-1])
    assert len(replies) - 1 == len(final.data["ids"])
    assert [len(r.spans) for r in replies[:-1]] == list(range(1, len(replies)))
    assert all("top:" in s.title for s in final.spans) and final.table.rows
    assert "--max-tokens" in final.text and final.data["stop_reason"] == "max_tokens"


def test_stop_button_ends_generation_at_once(tiny):
    cancel = threading.Event()
    replies = []
    for reply in chat.respond(f"/generate {TINY} --max-tokens 200 Tell me a story", tiny.session("stop"), cancel):
        replies.append(reply)
        if len(replies) == 3:
            cancel.set()
    final = replies[-1]
    assert final.data["stop_reason"] == "stopped" and len(final.data["ids"]) == 3
    assert "Stop" in final.text and final.data["sampling"]["greedy"] is False  # sampling is the default
    # the decoder dropped that request; the next one runs normally
    assert ask(tiny, f"/generate {TINY} --max-tokens 5 Hello").data["stop_reason"] in ("max_tokens", "eos")


def test_concurrent_learners_get_their_own_streams(tiny):
    prompts = ["The cat sat on the", "Once upon a time there was", "1 2 3 4", "Hello"]
    expected = {}
    with tiny.model(TINY) as lm:
        for p in prompts:
            expected[p] = lm.tokenizer.encode(p)
    expected = {p: reference(tiny, TINY, ids, 20, do_sample=False) for p, ids in expected.items()}
    results, barrier = {}, threading.Barrier(len(prompts))

    def learner(p):
        barrier.wait()
        results[p] = ask(tiny, f"/generate {TINY} --greedy --max-tokens 20 {p}", learner=p)

    threads = [threading.Thread(target=learner, args=(p,)) for p in prompts]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    for p in prompts:
        assert results[p].data["ids"] == expected[p], p
    assert decoder_for(tiny, TINY).largest_batch > 1  # they were decoded together, not queued


def test_streams_run_while_another_learner_reads_the_model_and_its_hooks_see_only_its_own_pass(tiny):
    """A tool holding the model shared (/lens: a forward pass with a hook) no longer freezes the
    streams: the decoder steps meanwhile, and the hook records none of the decoder's passes."""
    from tutor.anatomy import recording

    prompt = [464, 3797, 3332, 319, 262]
    expected = reference(tiny, TINY, prompt, 12, do_sample=False, eos=None)
    decoder = decoder_for(tiny, TINY)
    with tiny.model(TINY, shared=True) as lm, recording(lm.model) as calls:
        before = decoder.forwards
        stream = decoder.submit(prompt, 12, Sampling(), set())
        deadline = time.monotonic() + 30
        while stream.stop_reason is None and time.monotonic() < deadline:  # the old lock: never
            time.sleep(0.01)
        assert stream.stop_reason == "max_tokens" and decoder.forwards - before == 12
        assert calls == []  # other threads' forward passes are not recorded
        with torch.inference_mode():
            lm.model(torch.tensor([prompt]))
        assert calls[-1].name == "" and calls[-1].outputs[0][:2] == (1, len(prompt))  # its own pass is
    assert [s.id for s in stream.steps()] == expected


def test_a_model_that_cannot_be_had_fails_the_queued_requests_instead_of_hanging(tiny):
    from tutor.generation import Decoder

    decoder = Decoder(tiny, "no-such-model")
    streams = [decoder.submit([15496], 5, Sampling(), set()) for _ in range(3)]
    for stream in streams:
        with pytest.raises(ToolError, match="no-such-model"):
            list(stream.steps())
    deadline = time.monotonic() + 10
    while decoder._thread is not None and time.monotonic() < deadline:  # and the scheduler ends
        time.sleep(0.01)
    assert decoder._thread is None


def test_a_learner_holding_the_model_exclusively_pauses_the_streams(tiny):
    """Changing the model (train mode, attention switch, hooks on it for everyone) still excludes."""
    decoder = decoder_for(tiny, TINY)
    with tiny.model(TINY):
        before = decoder.forwards
        stream = decoder.submit([15496], 5, Sampling(), set())
        time.sleep(0.5)
        assert decoder.forwards == before and stream.stop_reason is None
    assert len([s.id for s in stream.steps()]) == 5


def test_batched_rows_equal_unbatched_greedy(tiny):
    """Requests joining a running batch at different moments, with different prompt lengths."""
    decoder = decoder_for(tiny, TINY)
    prompts = [[464, 3797, 3332, 319, 262], [15496], list(range(300, 320)), [40, 1842]]
    expected = [reference(tiny, TINY, p, 20, do_sample=False, eos=None) for p in prompts]
    streams = []
    for p in prompts:  # each joins a batch that is already running
        streams.append(decoder.submit(p, 20, Sampling(), set()))
        while len(streams[-1].ids) < len(p) + 2:
            time.sleep(0.001)
    got = [[s.id for s in st.steps()] for st in streams]
    assert got == expected


def test_requests_that_arrive_together_share_one_prefill_and_equal_unbatched_greedy(tiny):
    """Prompts of different lengths queued at once are prefilled in one left-padded forward."""
    decoder = decoder_for(tiny, TINY)
    prompts = [[464, 3797, 3332, 319, 262], [15496], list(range(300, 320)), [40, 1842]]
    expected = [reference(tiny, TINY, p, 20, do_sample=False, eos=None) for p in prompts]
    before = decoder.forwards
    with tiny.model(TINY):  # the decoder waits for the model, so all four are queued before it runs
        streams = [decoder.submit(p, 20, Sampling(), set()) for p in prompts]
    got = [[s.id for s in st.steps()] for st in streams]
    assert got == expected
    assert decoder.forwards - before == 1 + 19  # one prefill for all four, then 19 steps (one by one: 23)


def test_the_batch_steps_in_one_preallocated_static_cache_written_in_place(tiny):
    """No concatenation: while two rows run, every step writes one column of the same
    StaticCache buffers. A row alone keeps the model's own cache, as generate does (a static
    cache would attend over its whole padded capacity each step)."""
    from transformers import StaticCache

    decoder = decoder_for(tiny, TINY)
    prompts = [list(range(300, 320)), list(range(400, 420))]
    with tiny.model(TINY):  # held: both requests queue, and join in one prefill
        streams = [decoder.submit(p, 30, Sampling(), set()) for p in prompts]
    seen = set()
    for _ in streams[0].steps():
        cache = decoder.batch.cache
        if cache is not None and len(decoder.batch.rows) == 2:
            assert isinstance(cache, StaticCache)
            seen.add((cache.layers[0].keys.data_ptr(), cache.layers[0].keys.shape))
    list(streams[1].steps())
    for stream, prompt in zip(streams, prompts):
        assert stream.ids[len(prompt):] == reference(tiny, TINY, prompt, 30, do_sample=False, eos=None)
    assert len(seen) == 1 and next(iter(seen))[1][2] == len(prompts[0]) + 29  # filled + most still to make

    alone, kinds = decoder.submit(prompts[0], 12, Sampling(), set()), set()
    for _ in alone.steps():
        if decoder.batch.cache is not None:
            kinds.add(type(decoder.batch.cache).__name__)
    assert kinds == {"DynamicCache"}
    assert alone.ids[len(prompts[0]):] == reference(tiny, TINY, prompts[0], 12, do_sample=False, eos=None)


def test_rows_with_different_limits_joining_and_leaving_equal_unbatched_greedy(tiny):
    """A row that may still make more tokens than the batch has room for joins (the buffer is
    rebuilt larger), a longer prompt joins a shorter batch, rows finish and one is stopped."""
    decoder = decoder_for(tiny, TINY)
    plan = [([15496], 6), ([40, 1842], 40), (list(range(300, 330)), 10), ([464, 3797, 3332], 25)]
    expected = [reference(tiny, TINY, p, n, do_sample=False, eos=None) for p, n in plan]
    streams, stopped = [], decoder.submit([464, 318], 40, Sampling(), set())
    for p, n in plan:
        streams.append(decoder.submit(p, n, Sampling(), set()))
        while len(streams[-1].ids) < len(p) + 2 and streams[-1].stop_reason is None:
            time.sleep(0.001)
        if len(streams) == 2:
            stopped.cancel()  # leaves the batch while the others run
    got = [[s.id for s in st.steps()] for st in streams]
    assert got == expected and decoder.largest_batch > 1
    assert stopped.stop_reason == "stopped" and len(stopped.ids) < 2 + 40


def test_only_full_attention_caches_stack():
    """Sliding-window layers keep a rolling cache that cannot be padded: those models decode one
    request at a time on their own cache."""
    from transformers import GPT2Config, LlamaConfig, MistralConfig

    from tutor.generation import _stackable

    assert _stackable(GPT2Config(n_embd=32, n_layer=2, n_head=2))
    assert _stackable(LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=2))
    assert not _stackable(MistralConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64,
                                        num_attention_heads=2, num_key_value_heads=1, sliding_window=8))


# ---- what a learner can get wrong -----------------------------------------------------------------------

@pytest.mark.parametrize("command, words", [
    ("--temperature -1 hi", "0 or more"),
    ("--top-p 0 hi", "above 0 and at most 1"),
    ("--top-p 1.5 hi", "above 0 and at most 1"),
    ("--top-k 0 hi", "at least 1"),
    ("--repetition-penalty 0 hi", "above 0"),
    ("--max-tokens 201 hi", "limit of 200"),
    ("--max-tokens 0 hi", "at least 1"),
    ("--greedy --temperature 0.5 hi", "no effect"),
    ("--chat hi", "no chat template"),
])
def test_bad_input_gets_a_clear_answer(tiny, command, words):
    reply = ask(tiny, f"/generate {TINY} {command}")
    assert reply.error and words in reply.text and "Traceback" not in reply.text


def test_other_bad_input(tiny):
    encoder = ask(tiny, "/generate minilm-l6 hi")
    assert encoder.error and "does not predict a next token" in encoder.text
    too_long = ask(tiny, f"/generate {TINY} " + "word " * 80)
    assert too_long.error and "reads at most 64" in too_long.text
    zero = ask(tiny, f"/generate {TINY} --temperature 0 --max-tokens 5 The cat")
    assert not zero.error and "greedy" in zero.text
    assert zero.data["ids"] == ask(tiny, f"/generate {TINY} --greedy --max-tokens 5 The cat").data["ids"]
    with pytest.raises(ToolError):
        sampling_from_options(top_p=-0.1)


def test_empty_prompt_starts_from_bos(tiny):
    reply = ask(tiny, f"/generate {TINY} --max-tokens 3")
    assert not reply.error and reply.data["prompt_ids"] == [EOS]
    assert "beginning-of-text token" in reply.text


def test_context_window_caps_generation(tiny):
    prompt = " ".join(["word"] * 60)
    reply = ask(tiny, f"/generate {TINY} --max-tokens 50 {prompt}")
    n = len(reply.data["prompt_ids"])
    assert reply.data["stop_reason"] in ("context", "eos")
    assert n + len(reply.data["ids"]) <= 64 and "context window" in reply.text


# ---- the manual loop ------------------------------------------------------------------------------------

def test_step_mode_is_the_greedy_loop_one_token_per_call(tiny):
    first = ask(tiny, f"/generate --step {TINY} The cat sat on the", "stepper")
    assert not first.error, first.text
    prompt_ids = first.data["prompt_ids"]
    chosen = [first.data["chosen"]]
    for n in range(2, 5):
        reply = ask(tiny, "/generate --step", "stepper")
        assert reply.data["step"] == n and reply.data["ids"][:len(prompt_ids)] == prompt_ids
        chosen.append(reply.data["chosen"])
    assert chosen == reference(tiny, TINY, prompt_ids, 4, do_sample=False)[:len(chosen)]
    assert reply.data["top"][0][0] == chosen[-1]  # greedy: the top logit
    assert reply.buttons == ["/generate --step"]
    # another learner has their own loop
    assert ask(tiny, "/generate --step", "someone else").error


# ---- the real model ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_greedy_equals_generate_and_chat_template(tutor):
    reply = chat.final("/generate --greedy --max-tokens 40 The capital of France is", tutor.session("real"))
    assert not reply.error, reply.text
    assert reply.data["ids"] == reference(tutor, "smollm2-135m", reply.data["prompt_ids"], 40, do_sample=False,
                                          eos=2)
    chat_reply = chat.final("/generate --chat --greedy --max-tokens 60 What is the capital of France?",
                            tutor.session("c"))
    assert "<|im_start|>" in chat_reply.data["templated_prompt"] and "Paris" in chat_reply.data["text"]
    assert chat_reply.data["stop_reason"] == "eos" and chat_reply.data["ids"][-1] == 2


@pytest.mark.slow
def test_smollm2_concurrent_learners_equal_generate(tutor):
    prompts = ["The capital of France is", "Once upon a time, in a land far away,", "def fibonacci(n):"]
    with tutor.model("smollm2-135m") as lm:
        encoded = {p: lm.tokenizer.encode(p) for p in prompts}
    expected = {p: reference(tutor, "smollm2-135m", ids, 24, do_sample=False, eos=2) for p, ids in encoded.items()}
    results, barrier = {}, threading.Barrier(len(prompts))

    def learner(p):
        barrier.wait()
        results[p] = chat.final(f"/generate --greedy --max-tokens 24 {p}", tutor.session(p))

    threads = [threading.Thread(target=learner, args=(p,)) for p in prompts]
    [t.start() for t in threads]
    [t.join(300) for t in threads]
    assert {p: r.data["ids"] for p, r in results.items()} == expected


@pytest.mark.slow
def test_smollm2_requests_arriving_together_share_one_prefill_and_equal_generate(tutor):
    prompts = ["The capital of France is", "def fibonacci(n):", "Once upon a time, in a land far away, there"]
    with tutor.model("smollm2-135m") as lm:
        encoded = [lm.tokenizer.encode(p) for p in prompts]
    expected = [reference(tutor, "smollm2-135m", ids, 16, do_sample=False, eos=None) for ids in encoded]
    decoder = decoder_for(tutor, "smollm2-135m")
    before = decoder.forwards
    with tutor.model("smollm2-135m"):  # queued together while the model is held
        streams = [decoder.submit(ids, 16, Sampling(), set()) for ids in encoded]
    assert [[s.id for s in st.steps()] for st in streams] == expected
    assert decoder.forwards - before == 1 + 15


# ---- settings -------------------------------------------------------------------------------------------

def test_torch_threads_setting_reaches_the_decoders_thread(tmp_path):
    """TUTOR_TORCH_THREADS is set at startup; the decoder's thread (started later) computes with it."""
    from pydantic import ValidationError

    from tutor.settings import Settings

    before = torch.get_num_threads()
    try:
        tutor = tiny_gpt2_tutor(tmp_path, torch_threads=before + 1)  # differs from torch's own choice
        seen = []
        with tutor.model(TINY) as lm:
            hook = lm.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
        try:
            assert not ask(tutor, f"/generate {TINY} --greedy --max-tokens 3 Hi").error
        finally:
            hook.remove()
        assert seen and set(seen) == {before + 1}
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValidationError):
        Settings(torch_threads=0)

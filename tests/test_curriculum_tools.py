"""The tools the new lessons use: /beam, /kvcache, /positions, /objectives, and the facts the
older tools now report for lessons (/pitfalls library defaults, /tokenizers sizes, /inspect config).

Mechanics run on a tiny random GPT-2 (hidden 32, 2 layers, untrained, with GPT-2's real
tokenizer) and are compared with transformers' own code; facts about real models are in the
lessons' checks (tests/test_lesson_checks.py)."""

import pytest
import torch

from tiny_gpt2 import TINY, tiny_gpt2_tutor
from tutor import chat


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_gpt2_tutor(tmp_path_factory.mktemp("home"))


def ask(tutor, message, learner="learner"):
    return chat.final(message, tutor.session(learner))


def test_beam_returns_what_transformers_generate_returns(tiny):
    d = ask(tiny, f"/beam {TINY} --beams 3 --max-tokens 4 The cat sat").data
    with tiny.model(TINY) as lm:
        ids = torch.tensor([d["prompt_ids"]])
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), num_beams=3, num_return_sequences=3,
                                max_new_tokens=4, min_new_tokens=4, do_sample=False, length_penalty=0.0,
                                early_stopping=True, pad_token_id=50256)
        greedy = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, min_new_tokens=4,
                                   do_sample=False, pad_token_id=50256)
    assert [b["ids"] for b in d["beams"]] == [row[ids.shape[1]:].tolist() for row in out]
    assert d["greedy"]["ids"] == greedy[0, ids.shape[1]:].tolist()
    assert d["best_beats_greedy"] and d["beams"][0]["logprob"] >= d["beams"][-1]["logprob"]


def test_beam_and_kvcache_need_a_prompt_and_a_causal_model(tiny):
    reply = ask(tiny, f"/beam {TINY}")
    assert reply.error and "Give a prompt" in reply.text
    for tool in ("beam", "kvcache"):
        reply = ask(tiny, f"/{tool} minilm-l6 The cat")
        assert reply.error and "does not generate" in reply.text and "smollm2-135m" in reply.text


def test_kvcache_shapes_counts_and_same_tokens(tiny):
    d = ask(tiny, f"/kvcache {TINY} --steps 5 The cat sat").data
    n = d["prompt_tokens"]
    assert d["cache_shapes"] == [[1, 2, n + k, 16] for k in range(5)]  # 2 heads of 32 / 2
    assert d["positions_computed_with_cache"] == n + 4
    assert d["positions_computed_without_cache"] == sum(n + k for k in range(5))
    assert d["same_tokens"] and len(d["tokens"]) == 5


def test_positions_sinusoidal(tiny):
    d = ask(tiny, "/positions sinusoidal --length 16 --dim 8").data
    assert d["shape"] == [16, 8] and d["offset_dot_spread"] < 1e-9 and d["learned"] is False
    assert ask(tiny, "/positions sinusoidal --dim 7").error  # sin and cos come in pairs


def test_positions_learned_and_rope_need_the_right_model(tiny):
    d = ask(tiny, f"/positions learned {TINY}").data
    assert d["shape"] == [64, 32] and d["untrained"] is True
    reply = ask(tiny, f"/positions rope {TINY}")
    assert reply.error and "no rotary module" in reply.text
    assert "Name a model" in ask(tiny, "/positions rope").text


def test_objectives_causal_and_span(tiny):
    d = ask(tiny, "/objectives causal The cat sat on the mat").data
    assert d["examples"] == len(d["ids"]) - 1 and d["targets"] == d["ids"][1:]
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()
    d = ask(tiny, "/objectives span " + " ".join(words)).data
    hidden = [w for span in d["hidden"] for w in span]
    kept = [w for w in d["input"] if not w.startswith("<extra_id_")]
    assert sorted(hidden + kept) == sorted(words) and d["hidden_words"] == 2  # round(14 x 0.15)
    assert d["target"] == [t for k, span in enumerate(d["hidden"]) for t in [f"<extra_id_{k}>", *span]] + \
        [f"<extra_id_{d['spans']}>"]
    assert d["model_ran"] is False
    assert ask(tiny, "/objectives span too short").error


def test_pitfalls_reports_each_librarys_default_for_typed_specials(tiny):
    hf = ask(tiny, "/pitfalls --tokenizer gpt2 <|endoftext|>").data["specials"]
    assert hf["library_default"]["ids"] == [50256] and len(hf["plain_ids"]) == 7
    tk = ask(tiny, "/pitfalls --tokenizer r50k_base <|endoftext|>").data["specials"]["library_default"]
    assert tk["ids"] is None and "disallowed special token" in tk["raises"]


def test_tokenizers_lists_sizes_and_specials(tiny):
    d = ask(tiny, "/tokenizers").data["details"]
    assert d["gpt2"]["vocab_size"] == 50257 and d["gpt2"]["merges"] == 50000
    assert d["bert-base-uncased"]["specials"]["[MASK]"] == 103 and "merges" not in d["bert-base-uncased"]


def test_inspect_reports_config_and_untied_total(tiny):
    d = ask(tiny, f"/inspect {TINY}").data
    assert d["config"]["n_embd"] == 32 and d["config"]["head_dim"] == 16
    wte = next(m for m in d["modules"] if m["name"] == "transformer.wte")
    assert d["untied_parameters"] == d["total_parameters"] + wte["parameters"]  # lm_head counted again
    assert d["blocks_total"] == sum(b["parameters"] for b in d["blocks"])

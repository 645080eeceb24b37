"""The tokenizer tools through the chat, as a learner types them; tests read `data`, not prose."""

import tiktoken
import pytest


@pytest.fixture(scope="module")
def r50k():
    return tiktoken.get_encoding("r50k_base")


def test_tokenize_gpt2_gives_ids_tokens_and_bytes(ask, r50k):
    reply = ask("/tokenize gpt2 Hello unhappy world")
    assert not reply.error
    assert reply.data["ids"] == r50k.encode_ordinary("Hello unhappy world")
    assert reply.data["tokens"][-1] == "Ġworld"  # as the HF vocabulary names it
    assert reply.data["count"] == len(reply.spans) == len(reply.table.rows)
    assert reply.spans[-1].text == " world" and reply.spans[-1].id == reply.data["ids"][-1]
    assert "20 77 6f 72 6c 64" in reply.table.rows[-1]


def test_tokenize_shows_partial_utf8_and_wordpiece_and_specials(ask):
    cjk = ask("/tokenize r50k_base 日本")
    assert cjk.data["partial"] and any("\\x" in s.text for s in cjk.spans)
    bert = ask("/tokenize --specials bert-base-uncased unhappiness")
    assert bert.data["tokens"][0] == "[CLS]" and bert.data["tokens"][-1] == "[SEP]"
    assert any(t.startswith("##") for t in bert.data["tokens"]) and bert.spans[0].special
    unk = ask("/tokenize bert-base-uncased hi 🙂")
    assert unk.data["tokens"][-1] == "[UNK]" and "cannot spell" in unk.text
    typed = ask("/tokenize gpt2 <|endoftext|>")
    assert 50256 not in typed.data["ids"] and typed.data["count"] > 1  # plain text, not the special


def test_tokenize_whitespace_and_bad_input(ask, session):
    assert ask('/tokenize gpt2 "   "').data["count"] >= 1
    empty = ask("/tokenize gpt2")
    assert empty.error and "Give a text" in empty.text
    unknown = ask("/tokenize gtp2 hello")
    assert unknown.error and "gpt2" in unknown.text
    hub = ask("/tokenize t5-small hello")
    assert hub.error and "offline" in hub.text
    limit = session.tutor.settings.max_input_chars
    big = ask("/tokenize gpt2 " + "a" * (limit + 1))
    assert big.error and f"{limit:,}" in big.text
    lone = ask("/tokenize gpt2 a\ud800b")
    assert not lone.error and "surrogate" in lone.text
    assert lone.data["ids"] == tiktoken.get_encoding("r50k_base").encode_ordinary("a\ufffdb")


def test_smollm2_dropped_bytes_are_reported(ask):
    reply = ask("/tokenize smollm2 a\x06b")
    assert "0x06" in reply.text


def test_compare_counts_and_aligned_starts(ask):
    reply = ask("/compare --tokenizers gpt2,bert-base-uncased,o200k_base Tokenization is unhappily subtle.")
    counts = reply.data["counts"]
    assert set(counts) == {"gpt2", "bert-base-uncased", "o200k_base"}
    assert counts["o200k_base"] == len(tiktoken.get_encoding("o200k_base").encode_ordinary(
        "Tokenization is unhappily subtle."))
    assert reply.data["starts"]["gpt2"][0] == "|" and "```" in reply.text
    assert ask("/compare --tokenizers gpt2,nope hi").error


def test_count_every_tokenizer_and_context_windows(ask):
    reply = ask("/count The cat sat on the mat.")
    assert {"gpt2", "r50k_base", "cl100k_base", "o200k_base", "bert-base-uncased", "whisper"} <= set(reply.data["counts"])
    assert reply.data["counts"]["gpt2"] == reply.data["counts"]["r50k_base"]
    assert reply.data["context"]["gpt2"]["window"] == 1024
    assert "smollm2" not in reply.data["counts"] and "smollm2" in reply.text  # named, not silently missing
    one = ask("/count --tokenizers bert The cat")
    assert one.data["counts"] == {"bert-base-uncased": 2} and "512" in one.text


def test_decode_round_trip_and_bad_ids(ask):
    ids = ask("/tokenize cl100k_base Hello, 世界!").data["ids"]
    assert ask(f"/decode cl100k_base {ids}").data["text"] == "Hello, 世界!"
    assert "50,256" in ask("/decode gpt2 50257").text
    assert "whole numbers" in ask("/decode gpt2 12 abc").text
    gap = ask("/decode cl100k_base 100256")
    assert gap.error and "unused" in gap.text
    half = ask("/decode r50k_base 10545")  # ' ' + the first byte of 日
    assert "\ufffd" in half.data["text"] and "part of a character" in half.text


def test_vocab_both_ways_and_merges(ask):
    the = ask('/vocab gpt2 " the"')
    assert the.data["id"] == 262 and the.data["token"] == "Ġthe"
    assert the.data["merge"]["left"] == 256 and the.data["merge"]["right"] == 258  # 'Ġt' + 'he'
    by_id = ask("/vocab r50k_base 1169")
    assert by_id.data["text"] == "the" and by_id.data["merge"]["rank"] == 1169
    assert ask("/vocab bert ##ing").data["token"] == "##ing"
    multi = ask("/vocab gpt2 unhappiness")
    assert multi.error and "3 tokens" in multi.text
    assert ask("/vocab gpt2 99999").error


def test_vocab_prefix_claim_is_checked_against_the_real_vocabulary(ask, r50k):
    reply = ask("/vocab --prefixes 3 r50k_base")
    d = reply.data
    assert 0 < d["with_prefix"] < d["tokens"]  # the claim "every 3-char token has its prefix" is false
    for text in d["without_prefix"][:5]:  # each counter-example really lacks its prefix
        assert text[:-1].encode() not in r50k._mergeable_ranks and text.encode() in r50k._mergeable_ranks


def test_pitfalls_on_the_learners_text(ask):
    reply = ask("/pitfalls --tokenizer smollm2 In 2024 the index rose.")
    numbers = {n["text"]: n for n in reply.data["numbers"]}
    assert len(numbers["2024"]["ids"]) == 4
    the = next(w for w in reply.data["leading_space"] if w["word"] == "the")
    assert the["ids"]["the"] != the["ids"][" the"]
    langs = {row["label"]: row["tokens"] for row in reply.data["languages"]}
    assert langs["Hindi"] > langs["English"]
    special = ask("/pitfalls --tokenizer gpt2 stop<|endoftext|>now").data["specials"]
    assert 50256 not in special["plain_ids"] and 50256 in special["allowed_ids"]


def test_tokenizers_lists_every_offline_tokenizer(ask):
    names = ask("/tokenizers").data["tokenizers"]
    assert {"gpt2", "r50k_base", "cl100k_base", "o200k_base", "bert-base-uncased", "smollm2", "whisper"} <= set(names)


def test_tokenize_long_text_builds_only_what_it_shows_but_data_has_every_token(ask, tutor):
    """Past the shown spans the data still names every token and every cut character."""
    from plugins.tokenize import MAX_SPANS

    text = "héllo 日本語 wörld " * 1200  # CJK characters are cut across GPT-2 tokens
    reply = ask(f"/tokenize gpt2 {text}")
    gpt2 = tutor.tokenizer("gpt2")
    ids = gpt2.encode(text)
    assert reply.data["ids"] == ids and len(ids) > MAX_SPANS
    assert len(reply.spans) == MAX_SPANS
    assert reply.data["tokens"] == [gpt2.token_name(i) for i in ids]
    # the slow reference: pieces over the whole text
    from tutor.tokenizers import pieces
    everything = pieces(gpt2, text, ids)
    assert reply.data["partial"] == [i for i, p in enumerate(everything) if p.partial]
    assert max(reply.data["partial"]) > MAX_SPANS
    assert [s.text for s in reply.spans] == [p.text for p in everything[:MAX_SPANS]]


def test_tokenize_memoised_tables_stay_right_as_new_texts_bring_new_ids(ask, tutor):
    """/tokenize remembers, per tokenizer, each id's name and whether it begins inside a character;
    a later text with ids never seen (and a larger top id) must still get every answer right."""
    from tutor.tokenizers import pieces

    gpt2 = tutor.tokenizer("gpt2")
    for text in ("plain ascii words", "日本語 and café", "Ελληνικά 🙂 ünïcödé, then ascii again"):
        reply = ask(f"/tokenize gpt2 {text}")
        ids = gpt2.encode(text)
        assert reply.data["tokens"] == [gpt2.token_name(i) for i in ids]
        assert reply.data["partial"] == [i for i, p in enumerate(pieces(gpt2, text, ids)) if p.partial]
    with_specials = ask("/tokenize --specials bert-base-uncased two words")
    assert with_specials.data["special"] == [0, len(with_specials.data["ids"]) - 1]  # [CLS] ... [SEP]

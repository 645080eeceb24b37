"""/bpe: the trainer against Hugging Face `tokenizers`, its incremental counts against a recount,
and every action of the tool, bad input included."""

import doctest
import json
import random
from collections import Counter

import pytest
from hypothesis import example, given, settings, strategies as st

from tutor.builtin import bpe


def hf_merges(texts, merges):
    """The first `merges` merges of tokenizers' BpeTrainer, byte level, GPT-2 pre-tokenization."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=256 + merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
            for m in json.loads(tok.to_str())["model"]["merges"]]


def our_merges(texts, merges, trace=False):
    words = bpe.count_words(texts, "gpt2", "byte")
    trainer = bpe.Trainer(words, bpe.alphabet_for(words, "byte"), trace=trace)
    trainer.train(vocab_size=256 + merges)
    return trainer.merges


def test_docstring_examples():
    assert doctest.testmod(bpe).failed == 0


def test_same_merges_as_tokenizers_on_100kb_of_english():
    texts = bpe.python_docs_text(100_000).split("\n\n")
    ours, ref = our_merges(texts, 300), hf_merges(texts, 300)
    assert len(ref) == 300
    assert ours == ref


@pytest.mark.slow
def test_same_merges_as_tokenizers_on_1mb_of_english():
    text = bpe.python_docs_text(1_000_000)
    assert len(text.encode()) >= 999_000  # 1 MB, give or take a character cut in two
    texts = text.split("\n\n")
    ours, ref = our_merges(texts, 1000), hf_merges(texts, 1000)
    assert len(ref) == 1000
    assert ours == ref


@pytest.mark.slow
def test_same_2000_merges_as_tokenizers_on_5mb_of_english():
    texts = bpe.python_docs_text(5_000_000, packages=True).split("\n\n")
    ours, ref = our_merges(texts, 2000), hf_merges(texts, 2000)
    assert len(ref) == 2000
    assert ours == ref


def plain_start(words):
    """What the trainer starts from, the slow obvious way: each word as ids, each pair's count
    and the words it occurs in (the trainer builds these with numpy)."""
    trainer = bpe.Trainer({}, bpe.alphabet_for(words, "char"))
    ids = [[trainer.ids[c] for c in w] for w in words]
    counts, where = Counter(), {}
    for i, (word, n) in enumerate(zip(ids, words.values())):
        for pair in zip(word, word[1:]):
            counts[pair] += n
            where.setdefault(pair, set()).add(i)
    return ids, counts, where


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=6), st.integers(1, 10**12), max_size=12))
def test_the_starting_counts_equal_a_plain_count(words):
    # any characters: astral ones (one id each, as Python iterates a str), huge counts, one-letter words
    trainer = bpe.Trainer(words, bpe.alphabet_for(words, "char"))
    ids, counts, where = plain_start(words)
    assert trainer.words == ids
    assert dict(trainer.pair_counts) == dict(counts)
    assert {(a, b): set(pos) for _, a, b, _, pos in trainer.heap} == where
    assert len(trainer.heap) == len(where)  # one entry per pair at the start
    assert trainer.total_tokens == sum(len(w) * n for w, n in zip(ids, words.values()))


def test_a_word_outside_the_alphabet_and_an_empty_corpus():
    with pytest.raises(KeyError):
        bpe.Trainer({"abc": 1, "abz": 2}, ["a", "b", "c"])
    empty = bpe.Trainer({}, bpe.alphabet_for([], "byte"))
    assert empty.step() is None and empty.train(5) == [] and len(empty.vocab) == 256
    single = bpe.Trainer({"a": 3, "b": 1}, ["a", "b"])  # words of one token: no pair at all
    assert single.train(5) == [] and single.total_tokens == 4


def plain_count(texts, how):
    return Counter(w for t in texts for w in bpe.pretokenize(t, how))


# count_words cuts each text at spaces and matches each distinct piece once: these texts have a
# space before whitespace (the cut str.split makes there is wrong, so it cuts again), a space at
# either end, and \x1c, which str.isspace calls whitespace but the pattern's \s does not
@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab1 .'\n\t\u00a0\u2003\x1cé😀s"), max_size=60), max_size=5),
       st.sampled_from(["gpt2", "whitespace", "none"]))
@example(["a  b a b", " a b ", "a \n b", "b\n  a"], "gpt2")
@example(["a b a b", "a b", "b a", "", "a"], "gpt2")
@example(["a\x1c b a\x1cb", " \x1c"], "gpt2")
def test_counted_words_are_the_pre_tokenized_words_of_every_text(texts, how):
    assert bpe.count_words(texts, how, "char") == plain_count(texts, how)
    assert bpe.count_words(texts, how, "byte") == Counter(
        {bpe.to_symbols(w, "byte"): n for w, n in plain_count(texts, how).items()})


def test_ties_go_to_the_smaller_pair_of_ids_as_in_tokenizers():
    # Every pair occurs once. Ids follow code points, and GPT-2's map puts the space ('Ġ', 288)
    # after every letter: so a+b first, then z+y, and the space's pair last.
    assert our_merges(["zy ab"], 3) == hf_merges(["zy ab"], 3) == [("a", "b"), ("z", "y"), ("Ġ", "ab")]
    # ids, not strings: the new token "ab" (id 256) sorts after "c" (id 67), so Ġ+c beats Ġ+ab
    assert our_merges(["ab ab c"], 3) == hf_merges(["ab ab c"], 3) == [("a", "b"), ("Ġ", "c"), ("Ġ", "ab")]


def test_random_small_corpora_with_many_ties_match_tokenizers():
    for seed in range(40):
        rnd = random.Random(seed)
        texts = ["".join(rnd.choice("aab c") for _ in range(rnd.randint(1, 40))) for _ in range(rnd.randint(1, 6))]
        n = rnd.randint(1, 30)
        assert our_merges(texts, n, trace=seed % 2 == 0) == hf_merges(texts, n), (seed, texts)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text("abc", min_size=1, max_size=8), st.integers(1, 5), min_size=1, max_size=8),
       st.integers(1, 12))
def test_incremental_counts_equal_a_full_recount(words, n):
    trainer = bpe.Trainer(words, bpe.alphabet_for(words, "char"))
    trainer.train(n)
    recount = Counter()
    for word, count in zip(trainer.words, trainer.counts):
        for pair in zip(word, word[1:]):
            recount[pair] += count
    merged = {(trainer.ids[l], trainer.ids[r]) for l, r in trainer.merges}
    kept = {p: c for p, c in trainer.pair_counts.items() if c and p not in merged}
    assert kept == {p: c for p, c in recount.items() if p not in merged}
    assert trainer.total_tokens == sum(len(w) * c for w, c in zip(trainer.words, trainer.counts))


def test_train_shows_each_merge_and_the_corpus(ask):
    r = ask("/bpe train --merges 4 --level char --pretokenize whitespace the the cat")
    assert not r.error, r.text
    assert r.data["merges"][:2] == [["h", "e"], ["t", "he"]]  # t+h and h+e tie at 2: h has the smaller id
    assert r.data["counts"][:2] == [2, 2]
    assert r.data["vocab_size"] == r.data["alphabet_size"] + 4
    assert r.data["sequences"][:3] == ["t h e  t h e  c a t", "t he  t he  c a t", "the  the  c a t"]
    assert len(r.table.rows) == 4 and r.table.rows[0][3]  # the runners-up are shown


def test_vocab_size_and_stopping_early(ask):
    r = ask("/bpe train --vocab-size 260 the cat sat on the mat")
    assert r.data["vocab_size"] == 260 and len(r.data["merges"]) == 4
    r = ask("/bpe train --merges 50 ab ab")
    assert r.data["stopped_early"] and len(r.data["merges"]) == 2
    assert "Stopped early" in r.text


@pytest.mark.parametrize("command, expected", [
    ("/bpe train", "corpus is empty"),
    ("/bpe train    ", "corpus is empty"),
    ("/bpe train --pretokenize whitespace ...", "merge"),  # punctuation is a word: still trains
    ("/bpe train --merges 5 --vocab-size 300 hello", "not both"),
    ("/bpe train --vocab-size 100 hello", "more than the starting alphabet"),
    ("/bpe train --merges 999999 hello", "at most"),
    ("/bpe train --merges -1 hello", "at least"),
    ("/bpe train --merges lots hello", "whole number"),
    ("/bpe train --corpus sample hello", "one corpus"),
    ("/bpe encode hello", "Nothing trained yet"),
    ("/bpe step", "Nothing trained yet"),
    ("/bpe parents", "Nothing trained yet"),
    ("/bpe fly", "not a valid action"),
    ("/bpe train --file /no/such/file.txt", "No file"),
    ("/bpe train --file /etc/hostname", "outside the folders"),
])
def test_bad_input_gets_a_clear_message(ask, command, expected):
    r = ask(command)
    assert expected in r.text


def test_binary_and_text_uploads(ask, tmp_path):
    blob = tmp_path / "model.bin"
    blob.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    r = ask(f"/bpe train --file {blob}")
    assert r.error and "not UTF-8 text" in r.text
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    assert "not UTF-8 text" in ask(f"/bpe train --file {latin}").text
    good = tmp_path / "notes.txt"
    good.write_text("low lower lowest newer newest " * 5, encoding="utf-8")
    r = ask(f"/bpe train --merges 6 --file {good}")
    assert not r.error and r.data["corpus"] == "file notes.txt" and len(r.data["merges"]) == 6


def test_none_pretokenization_has_a_size_limit(ask):
    r = ask("/bpe train --pretokenize none " + "ab " * 8000)
    assert r.error and "under 20,000 characters" in r.text


def test_step_updates_only_pairs_next_to_the_merge(ask):
    first = ask("/bpe step --level char --pretokenize whitespace low low low lower newest")
    assert first.data["pair"] == ["l", "o"] and first.data["count"] == 4
    assert first.data["words_touched"] == 2 and first.data["words"] == 3
    changed = {(l, r): (b, a) for l, r, b, a in first.data["changes"]}
    assert changed == {("o", "w"): (4, 0), ("lo", "w"): (0, 4)}  # nothing in "newest" moved
    second = ask("/bpe step")
    assert second.data["step"] == 2 and second.data["pair"] == ["lo", "w"]
    assert second.data["next"][0][2] <= second.data["count"]
    assert "before:" in second.text and "after:" in second.text


def test_overlapping_pairs_count_more_than_they_merge(ask):
    r = ask("/bpe step --level char --pretokenize none aaaa")
    assert r.data["count"] == 3 and r.data["replaced"] == 2


def test_encode_applies_merges_in_training_order(ask):
    ask("/bpe train --merges 3 --level char --pretokenize whitespace hug hug hug pug pug pun pun pun bun hugs")
    r = ask("/bpe encode hugs")
    assert r.data["tokens"] == ["hug", "s"]
    assert [m[0] for m in r.data["merges_applied"][0]] == sorted(m[0] for m in r.data["merges_applied"][0])
    r = ask("/bpe encode hug€")
    assert r.data["unknown"] == 1 and r.data["tokens"][-1] == "<unk>"


def test_save_makes_a_tokenizer_for_count(ask, tutor, session):
    from tutor.tokenizers.saved import owned_dir
    ask("/bpe train --merges 40 --corpus sample")
    r = ask("/bpe save toy-bpe")
    assert not r.error, r.text
    assert r.data["same_as_bpe_encode"]
    path = owned_dir(tutor.settings, session.learner_id) / "toy-bpe" / "tokenizer.json"  # this learner's own
    assert path.is_file()
    from tokenizers import Tokenizer

    text = "The other cat sat on the mat; naïve café ☕"
    encoded = ask(f"/bpe encode {text}").data
    assert Tokenizer.from_file(str(path)).encode(text).ids == encoded["ids"]
    assert ask(f"/count toy-bpe {text}").data["counts"] == {"toy-bpe": len(encoded["ids"])}
    mine = session.context().tokenizer("toy-bpe")
    assert mine.decode(encoded["ids"]) == text
    assert b"".join(mine.token_bytes(i) for i in encoded["ids"]) == text.encode()
    assert "already the built-in tokenizer" in ask("/bpe save o200k_base").text
    assert "cannot name a tokenizer" in ask("/bpe save ../evil").text


def test_saved_char_level_tokenizer_round_trips(ask, session):
    ask("/bpe train --merges 10 --level char --pretokenize whitespace the cat sat on the mat")
    assert ask("/bpe save toy-char").data["same_as_bpe_encode"]
    assert session.context().tokenizer("toy-char").encode("the cat") == ask("/bpe encode the cat").data["ids"]


def test_saved_tokenizers_are_found_after_a_restart(tmp_path):
    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings

    home = tmp_path / "home2"
    first = Tutor(Settings(home=home))
    chat.final("/bpe train --merges 5 the cat sat", first.session("a"))
    assert chat.final("/bpe save old-bpe", first.session("a")).data["same_as_bpe_encode"]
    again = Tutor(Settings(home=home))  # a new process: nothing in memory
    reply = chat.final("/tokenize old-bpe the cat", again.session("a"))
    assert not reply.error and reply.data["ids"] == chat.final("/bpe encode the cat", first.session("a")).data["ids"]


def test_a_saved_tokenizer_is_its_learners_own(tmp_path):
    """Before: another learner saving the same name overwrote yours (one folder per name)."""
    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings

    t = Tutor(Settings(home=tmp_path / "home3"))
    ada, bo = t.session("ada"), t.session("bo")
    chat.final("/bpe train --merges 8 aaaa aaab aaba", ada)
    chat.final("/bpe train --merges 8 zzzz zzzy zzyz", bo)
    assert chat.final("/bpe save mytok", ada).data["same_as_bpe_encode"]
    assert chat.final("/bpe save mytok", bo).data["same_as_bpe_encode"]  # the same name, bo's own
    for who in (ada, bo):
        shown = chat.final("/tokenize mytok aaaa zzzz", who)
        assert not shown.error and shown.data["ids"] == chat.final("/bpe encode aaaa zzzz", who).data["ids"]
    assert (chat.final("/tokenize mytok aaaa", ada).data["ids"]
            != chat.final("/tokenize mytok aaaa", bo).data["ids"])
    other = chat.final("/tokenize mytok aaaa", t.session("cy"))
    assert other.error and "Unknown tokenizer" in other.text  # nobody else sees either


def test_parents_of_three_long_tokens(ask):
    ask("/bpe train --merges 120 --corpus sample")
    r = ask("/bpe parents")
    assert r.data["parents_made_first"]
    assert r.data["length3"]
    for token, left, right, step, made_left, made_right in r.data["length3"]:
        assert left + right == token and made_left < step and made_right < step
    assert r.data["longer_before_shorter"]
    ex = r.data["example"]
    assert len(ex["longer"]) > len(ex["shorter"]) and ex["longer_step"] < ex["shorter_step"]


def test_sweep_draws_tokens_per_word_falling(ask):
    ask("/bpe train --merges 5 --corpus sample")
    r = ask("/bpe sweep --merges 150")
    assert r.figure is not None
    per_word = r.data["tokens_per_word"]
    assert per_word[0] > per_word[-1] and all(a >= b for a, b in zip(per_word, per_word[1:]))
    assert r.data["vocab_sizes"][0] == 256


def test_compare_trains_the_other_algorithms_on_the_same_corpus(ask):
    ask("/bpe train --merges 150 --corpus sample")
    r = ask("/bpe compare tokenization cats")
    assert not r.error, r.text
    assert set(r.data["splits"]) >= {"our BPE", "WordPiece", "Unigram", "SentencePiece BPE", "SentencePiece Unigram"}
    for name, splits in r.data["splits"].items():
        joined = "".join(splits["cats"]).replace("##", "").replace("▁", "").replace("␣", "")
        assert joined == "cats", name


def test_long_training_streams_progress_then_the_result(session):
    from tutor import chat

    replies = list(chat.respond("/bpe train --merges 300 --corpus sample", session))
    assert [r.done for r in replies] == [False] * (len(replies) - 1) + [True]
    assert len(replies) >= 2 and 0 < replies[0].progress <= 1
    final = replies[-1].data
    assert final["stopped_early"] and 100 < len(final["merges"]) < 300
    assert len(replies[-1].table.rows) == 100  # the table keeps to the first 100 merges
    assert chat.final("/bpe train --vocab-size 400 --corpus sample", session).data["vocab_size"] == 400

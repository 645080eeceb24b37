"""Reference equality: each tokenizer gives the ids of the library that defines it."""

import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ASSETS

SEED = Path("/work/shared/seed/learner-conversation.md")
CORPUS = [
    "Hello world", " leading space", "trailing space ", "  two  spaces\n\nand\ttabs\r\n",
    "unhappiness", "The year 2024 cost $1,234,567.89 (about 3.14159%).",
    "def f(x):\n    return x ** 2  # comment\n", "naïve café résumé Ångström", "日本語のテキストです。",
    "中文分词很难", "आज मौसम अच्छा है", "مرحبا بالعالم", "Привет, мир!", "emoji 🙂👍🏽🇫🇷 mix",
    "e\u0301 combining", "<|endoftext|> typed by a user", "[CLS] [SEP] [MASK] <s> </s>", "'s 're 've 'll 'd",
    "   ", "\n", "a" * 500, "x" * 3 + "ü" * 40,
]


def big_text() -> str:
    """A large varied text: the seed conversation when present, and the corpus, repeated."""
    seed = SEED.read_text() if SEED.is_file() else ""
    return seed + "\n".join(CORPUS) * 40


@pytest.fixture(scope="module")
def toks(tutor):
    return {n: tutor.tokenizer(n) for n in ("gpt2", "r50k_base", "cl100k_base", "o200k_base",
                                            "bert-base-uncased", "smollm2", "whisper")}


def test_gpt2_tokenizers_object_gives_tiktoken_r50k_ids_on_a_large_text(toks):
    import tiktoken

    text = big_text()
    assert len(text) > 20_000
    reference = tiktoken.get_encoding("r50k_base").encode_ordinary(text)
    assert toks["gpt2"].encode(text) == reference
    assert toks["gpt2"].tok.encode(text).ids == reference  # the raw tokenizers object too
    assert toks["gpt2"].vocab_size == 50257


def test_gpt2_merges_are_gpt2s_fifty_thousand(toks):
    """One merge per token, the same one tiktoken's ranks imply (ranks shifted by the 256 bytes)."""
    gpt2, r50k = toks["gpt2"], toks["r50k_base"]
    assert len(gpt2._model["merges"]) == 50_000
    for id in (262, 1169, 5239, 12758, 31373, 50255):
        assert gpt2.merge(id) == r50k.merge(id)._replace(rank=id - 256) if hasattr(r50k.merge(id), "_replace") \
            else (gpt2.merge(id).left, gpt2.merge(id).right, gpt2.merge(id).rank + 256) == \
            (r50k.merge(id).left, r50k.merge(id).right, r50k.merge(id).rank)
    the = gpt2.merge(gpt2.token_id("the"))
    assert (gpt2.token_name(the.left), gpt2.token_name(the.right)) == ("t", "he")


@pytest.mark.parametrize("name", ["r50k_base", "cl100k_base", "o200k_base"])
def test_tiktoken_encodings_match_tiktoken(toks, name):
    import tiktoken

    enc = tiktoken.get_encoding(name)
    for text in CORPUS + [big_text()[:30_000], "a\ud800b"]:
        assert toks[name].encode(text) == enc.encode_ordinary(text)
        assert toks[name].count(text) == len(enc.encode_ordinary(text))


@pytest.mark.slow  # imports transformers (~10-20 s on a busy machine)
def test_bert_matches_transformers(tutor, toks):
    from transformers import AutoTokenizer

    from tutor.assets import minilm_folder

    ref = AutoTokenizer.from_pretrained(minilm_folder(tutor.settings.assets))
    for text in CORPUS + [big_text()[:20_000]]:
        expect = ref(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        assert toks["bert-base-uncased"].encode(text) == expect, text
    assert toks["bert-base-uncased"].encode_for_model("hi there") == ref("hi there")["input_ids"]
    assert toks["bert-base-uncased"].vocab_size == 30522


@pytest.mark.slow  # imports transformers (~10-20 s on a busy machine)
def test_smollm2_splits_every_digit_and_otherwise_matches_the_converted_tokenizer(tutor, toks):
    from transformers import AutoTokenizer

    from tutor.assets import smollm2_folder

    ref = AutoTokenizer.from_pretrained(smollm2_folder(tutor.settings.assets))
    smol = toks["smollm2"]
    for text in CORPUS:
        if not any(c.isdigit() for c in text) and "<" not in text:
            assert smol.encode(text) == ref(text, add_special_tokens=False)["input_ids"], text
    ids = smol.encode("2024")
    assert [smol.decode([i]) for i in ids] == ["2", "0", "2", "4"]  # llama.cpp's "smollm" pre-tokenizer
    assert smol.vocab_size == 49152


@pytest.fixture(scope="module")
def whisper_reference():
    """openai-whisper's own tokenizer.py, from its sdist (pure Python: tiktoken only)."""
    folder = ASSETS / "whisper-reference"
    module_path = folder / "whisper" / "tokenizer.py"
    if not module_path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(folder),
                        "openai-whisper==20250625"], check=True, capture_output=True)
        with tarfile.open(next(folder.glob("openai_whisper-*.tar.gz"))) as t:
            for info in t.getmembers():
                inner = info.name.split("/", 1)[-1]
                if inner in ("whisper/tokenizer.py", "whisper/assets/multilingual.tiktoken"):
                    target = folder / inner
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(t.extractfile(info).read())
    spec = importlib.util.spec_from_file_location("whisper_tokenizer_reference", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_encoding("multilingual")


def test_whisper_matches_openai_whisper(toks, whisper_reference):
    ours = toks["whisper"].encoding
    assert ours.n_vocab == whisper_reference.n_vocab
    assert ours._special_tokens == whisper_reference._special_tokens
    for text in CORPUS + [big_text()[:20_000]]:
        assert ours.encode_ordinary(text) == whisper_reference.encode_ordinary(text)


BYTE_LEVEL = ["gpt2", "r50k_base", "cl100k_base", "o200k_base", "smollm2", "whisper"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_byte_level_round_trip_and_gpt2_equality_on_arbitrary_unicode(toks, text):
    for name in BYTE_LEVEL:
        if set(text.encode("utf-8")) & toks[name].missing_bytes:
            continue  # checked below: such bytes are dropped, and /tokenize says so
        assert toks[name].decode(toks[name].encode(text)) == text, name
    assert toks["gpt2"].encode(text) == toks["r50k_base"].encode(text)
    # gpt2's ids come from tiktoken (the fast path): the Hugging Face object must agree with them
    assert toks["gpt2"].tok.encode(text).ids == toks["gpt2"].encode(text)


def test_gpt2_fast_path_agrees_with_its_hugging_face_object_on_counts_and_specials(toks):
    gpt2 = toks["gpt2"]
    text = big_text() + " <|endoftext|> typed"
    assert gpt2.count(text) == len(gpt2.tok.encode(text).ids)
    assert gpt2.encode_for_model(text) == gpt2.tok.encode(text, add_special_tokens=True).ids
    assert gpt2.encode_allowing_specials("a<|endoftext|>b") == gpt2._allowing.encode("a<|endoftext|>b").ids
    assert 50256 in gpt2.encode_allowing_specials("a<|endoftext|>b")
    assert 50256 not in gpt2.encode("a<|endoftext|>b")


def test_smollm2_has_no_token_for_some_bytes_and_drops_them(toks):
    smol = toks["smollm2"]
    assert 0x06 in smol.missing_bytes and ord("a") not in smol.missing_bytes
    assert smol.decode(smol.encode("a\x06b")) == "ab"
    assert not toks["gpt2"].missing_bytes


def test_pieces_show_partial_utf8_honestly(toks):
    from tutor.tokenizers import pieces

    tok = toks["r50k_base"]
    text = "Hi 日本"
    parts = pieces(tok, text, tok.encode(text))
    assert b"".join(p.data for p in parts) == text.encode("utf-8")
    partial = [p for p in parts if p.partial]
    assert partial and all("日" in p.partial or "本" in p.partial for p in partial)
    assert all("\\x" in p.text for p in partial)


@pytest.mark.parametrize("name", ["gpt2", "smollm2", "o200k_base"])
def test_whole_token_pieces_equal_the_byte_by_byte_walk(toks, name):
    """_byte_pieces takes a token whose bytes are whole UTF-8 as whole characters without
    walking its bytes; walking every token (the straightforward way) gives the same texts, and
    the offsets of the whole ones cut the text back out. Also for a prefix of the ids that ends
    inside a character, as /tokenize builds only what it shows."""
    from tutor.tokenizers import pieces
    from tutor.tokenizers.text import _cut_piece

    tok = toks[name]
    text = "naïve café 日本語の テキスト 🙂👍🏽 e\u0301 Ελληνικά, then ascii\n\tand tabs"
    ids = tok.encode(text)
    for cut in (len(ids), len(ids) - 1, len(ids) // 2):
        parts = pieces(tok, text, ids[:cut])
        full = b"".join(tok.token_bytes(i) for i in ids[:cut])
        pos = 0
        for p in parts:
            walked = _cut_piece(tok, p.id, full, pos, pos + len(p.data), p.special)
            assert (p.text, p.partial) == (walked.text, walked.partial), (cut, p)
            if not p.partial:
                assert text[p.start:p.end] == p.text
            pos += len(p.data)


def test_saved_tokenizer_is_registered_now_and_after_restart(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from tutor.context import Tutor
    from tutor.settings import Settings
    from tutor.tokenizers import save_tokenizer

    toy = Tokenizer(models.BPE())
    toy.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    toy.train_from_iterator(["low lower lowest newer wider"] * 20,
                            trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    settings_ = Settings(home=tmp_path / "home", assets_dir=ASSETS, offline="yes")
    first = Tutor(settings_)
    save_tokenizer(first, "toy-bpe", toy, description="test")
    from tutor.tokenizers import find_tokenizer

    assert find_tokenizer(first, "toy-bpe").encode("lower") == toy.encode("lower").ids
    again = Tutor(settings_)  # a new process finds it in TUTOR_HOME/tokenizers/
    assert find_tokenizer(again, "toy-bpe").encode("lowest") == toy.encode("lowest").ids


@pytest.mark.slow  # imports transformers (~10-20 s on a busy machine)
def test_a_locally_saved_transformers_tokenizer_loads_like_a_hub_one(tmp_path, tutor):
    """The online path (AutoTokenizer) with a folder written by save_pretrained."""
    from transformers import AutoTokenizer

    from tutor.assets import GPT2_TIKTOKEN, package_file
    from tutor.tokenizers import from_transformers, gpt2_transformers_tokenizer

    gpt2_transformers_tokenizer(str(package_file(GPT2_TIKTOKEN, tutor.settings.assets))).save_pretrained(tmp_path)
    tok = from_transformers("local", AutoTokenizer.from_pretrained(tmp_path))
    assert tok.encode("Hello world <|endoftext|>") == tutor.tokenizer("r50k_base").encode("Hello world <|endoftext|>")


def test_byte_bpe_tokenizer_from_toy_merges_encodes_like_plain_bpe():
    """What the toy trainer hands over (ordered byte merges) becomes a tokenizers object whose ids
    are those of merging by rank (bpe_parts, minbpe's encode)."""
    import regex

    from tutor.tokenizers import HFTokenizer, bpe_parts, byte_bpe_tokenizer

    text = "low lower lowest newer wider widest " * 10
    ids, merges = list(text.encode()), []
    for new in range(256, 276):  # a tiny minbpe-style training loop
        pairs = {}
        for pair in zip(ids, ids[1:]):
            pairs[pair] = pairs.get(pair, 0) + 1
        a, b = max(pairs, key=pairs.get)
        vocab = {i: bytes([i]) for i in range(256)}
        for i, (x, y) in enumerate(merges):
            vocab[256 + i] = x + y
        merges.append((vocab[a], vocab[b]))
        out, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == (a, b):
                out.append(new)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        ids = out
    pattern = r" ?\p{L}+| ?[^\s\p{L}]+|\s+"
    tok = HFTokenizer("toy", byte_bpe_tokenizer(merges, pattern))
    ranks = {bytes([i]): i for i in range(256)} | {x + y: 256 + i for i, (x, y) in enumerate(merges)}
    sample = "the lowest newest widow, 日本"
    expect = [ranks[p] for chunk in regex.findall(pattern, sample) for p in bpe_parts(ranks, chunk.encode())]
    assert tok.encode(sample) == expect
    assert tok.decode(tok.encode(sample)) == sample
    assert tok.merge(ranks[merges[0][0] + merges[0][1]]).rank == 0


def test_gpt2_token_bytes_from_tiktoken_equal_the_hugging_face_names(toks):
    from tutor.tokenizers import HFTokenizer

    gpt2 = toks["gpt2"]
    for id in (0, 220, 262, 1169, 31373, 50255, 50256):
        assert gpt2.token_bytes(id) == HFTokenizer.token_bytes(gpt2, id)


def test_gpt2_fast_lookups_equal_the_hugging_face_object_for_every_id(toks):
    from tutor.tokenizers import HFTokenizer

    gpt2 = toks["gpt2"]
    for id in range(gpt2.vocab_size):
        assert gpt2.token_name(id) == gpt2.tok.id_to_token(id)
    for id in range(0, gpt2.vocab_size, 97):
        assert gpt2.token_bytes(id) == HFTokenizer.token_bytes(gpt2, id)
    with pytest.raises(Exception):
        gpt2.token_name(gpt2.vocab_size)

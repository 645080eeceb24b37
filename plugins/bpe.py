"""/bpe: train a small byte-pair-encoding tokenizer merge by merge, and hold it against real ones.

BPE builds a vocabulary bottom-up. Start with an alphabet (256 bytes, or the characters seen),
split the corpus into words, count every pair of *adjacent current tokens* (weighted by how often
the word occurs), merge the most frequent pair into a new token, update the counts, repeat. The
order of merges is the tokenizer: encoding a new text applies the same merges in the same order.

This file reads in teaching order:
  1. pre-tokenization      text -> words (GPT-2's regex, whitespace, or none)
  2. the alphabet          bytes shown as printable characters (GPT-2's map), or characters
  3. the trainer           incremental pair counts + a heap; `Trainer.step()` is one merge
  4. encoding              apply the learned merges to new text, lowest rank first
  5. export                a Hugging Face `tokenizers` JSON that /tokenize and /compare can load
  6. the /bpe tool         train, step, encode, save, parents, sweep, compare

The trainer matches Hugging Face `tokenizers`' BpeTrainer merge for merge, ties included
(tests/test_bpe.py checks 1,000 merges of 1 MB of English and 2,000 of 5 MB; bench/bench_bpe.py
checks 2,000 on 1 MB and 5 MB while it times the two, and against minbpe's trainer, which
recounts every pair after every merge).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
import io
import itertools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Iterable, Literal, Mapping, Sequence

import regex

from tutor import Arg, File, Reply, Table, Text, ToolError, hookimpl
from tutor.tools import valid_unicode
from tutor.tokenizers import save_tokenizer

# ---- 1. pre-tokenization -------------------------------------------------------------------

# GPT-2's split (the same pattern `tokenizers`' ByteLevel pre-tokenizer uses): a word keeps the
# space before it (" cat"), so merges never cross a word boundary and "cat" vs " cat" differ.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_GPT2 = regex.compile(GPT2_PATTERN)
_WHITESPACE = regex.compile(r"\w+|[^\w\s]+")  # `tokenizers`' Whitespace pre-tokenizer: spaces dropped

PreTokenize = Literal["gpt2", "whitespace", "none"]
Level = Literal["byte", "char"]


def pretokenize(text: str, how: PreTokenize = "gpt2") -> list[str]:
    """Split text into the words BPE merges inside of.

    >>> pretokenize("the cat's hat", "gpt2")
    ['the', ' cat', "'s", ' hat']
    >>> pretokenize("the cat's hat", "whitespace")
    ['the', 'cat', "'", 's', 'hat']
    >>> pretokenize("the cat", "none")
    ['the cat']
    """
    if how == "gpt2":
        return _GPT2.findall(text)
    if how == "whitespace":
        return _WHITESPACE.findall(text)
    return [text] if text else []


# ---- 2. the alphabet -----------------------------------------------------------------------

def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, so a byte-level token is a string.

    Printable bytes stand for themselves; the others (space, newline, control bytes...) are
    shifted to code points from 256 up. That is why GPT-2's vocabulary shows a space as 'Ġ'.

    >>> m = bytes_to_unicode(); m[ord("a")], m[ord(" ")], m[ord("\\n")]
    ('a', 'Ġ', 'Ċ')
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(shifted)}}


BYTE_CHAR = bytes_to_unicode()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}


def to_symbols(word: str, level: Level) -> str:
    """A word as the string of its starting symbols: one character per byte, or the characters.

    >>> to_symbols(" café", "byte")   # é is two bytes in UTF-8
    'ĠcafÃ©'
    >>> to_symbols(" café", "char")
    ' café'
    """
    # latin-1 turns each byte b into chr(b), which translate maps at C speed (2x the join)
    return word.encode("utf-8").decode("latin-1").translate(BYTE_CHAR) if level == "byte" else word


def count_words(texts: Iterable[str], how: PreTokenize = "gpt2", level: Level = "byte") -> Counter:
    """Pre-tokenize every text and count each distinct word once: BPE works on (word, count).

    >>> count_words(["a cat saw a cat"], "gpt2", "char")
    Counter({' cat': 2, 'a': 1, ' a': 1, ' saw': 1})

    In one thread. Threads were slower here, not faster: every match needs Python's lock back to
    become a string, so two threads mostly wait on each other (on 2 cores, 5 MB took 1.51 s in two
    threads against 0.98 s in one, and 1 MB 0.29 s against 0.20 s).
    """
    words = _count(list(texts), how)
    if level == "char":
        return words
    return Counter({to_symbols(w, "byte"): n for w, n in words.items()})


# Counting words by matching the pattern over the whole text spends most of its time making a
# string of every match. Text repeats itself, so it is cut where no word can cross, each distinct
# piece is matched once, and its words count as often as the piece occurs: on 5 MB of English,
# 81,636 distinct pieces hold a fifth of the text and 300,000 of its 1,160,000 words.
#
# Where to cut. A space is never inside a Whitespace word. For GPT-2, a space followed by a
# non-space always starts a word (" cat", " 42", " ("), and the pattern never looks back past it,
# so the words of " cat..." are the same alone as in the text.
_CUT = regex.compile(r" (?=\S)")
_NOT_CUT = regex.compile(r"\s|\Z")  # a piece after a space str.split cut at, but GPT-2 does not


def _count(texts: list[str], how: PreTokenize) -> Counter:
    if how == "none":
        return Counter(t for t in texts if t)
    if how == "whitespace":
        return _words_of(Counter(itertools.chain.from_iterable(t.split(" ") for t in texts)), _WHITESPACE, " ")
    # str.split(" ") is 7x faster than a regex split, and exact unless a space is followed by
    # whitespace ("a  b", "a \n"): then the texts are cut again with the pattern that says where
    firsts, rest = _pieces(texts, lambda t, most=-1: t.split(" ", most))
    if any(_NOT_CUT.match(piece) for piece in rest):
        firsts, rest = _pieces(texts, lambda t, most=0: _CUT.split(t, most, concurrent=True))
    words: Counter = Counter()
    for piece, n in firsts.items():  # one per text; they may start with whitespace, so one at a time
        for w in _GPT2.findall(piece, concurrent=True):
            words[w] += n
    words.update(_words_of(rest, _GPT2, " ", prefix=" "))  # the space each was cut after begins a word
    return words


def _pieces(texts: list[str], split) -> tuple[Counter, Counter]:
    """Each text's first piece (no space before it), and all the others (each cut after a space)."""
    firsts = Counter(split(t, 1)[0] for t in texts)
    return firsts, Counter(itertools.chain.from_iterable(split(t) for t in texts)) - firsts


def _words_of(pieces: Mapping[str, int], pattern: regex.Pattern, sep: str, prefix: str = "") -> Counter:
    """The words of each piece, counted as often as the piece occurs. Pieces occurring equally
    often are matched together, joined by `sep` (a cut itself), in one call per count."""
    by_count: dict[int, list[str]] = defaultdict(list)
    for piece, n in pieces.items():
        by_count[n].append(piece)
    # concurrent=True: `regex` lets go of Python's lock while it matches, so the server's other
    # threads (other learners) keep running during a long upload's pre-tokenization
    words: Counter = Counter()
    for n, group in by_count.items():
        found = Counter(pattern.findall(prefix + sep.join(group), concurrent=True))
        words.update({w: c * n for w, c in found.items()} if n > 1 else found)
    return words


def alphabet_for(words: Iterable[str], level: Level) -> list[str]:
    """The starting tokens, ordered by code point (the order `tokenizers` numbers them in).

    Byte level always has all 256 bytes, so any text can be encoded later; char level has only
    the characters the corpus contains. The order matters: ids break ties between pair counts.
    """
    chars = set(BYTE_CHAR.values()) if level == "byte" else set(itertools.chain.from_iterable(words))
    return sorted(chars)


# ---- 3. the trainer ------------------------------------------------------------------------

@dataclass
class MergeStep:
    """One merge: what was merged, how often the pair occurred, and what it changed."""

    number: int  # 1-based
    left: str
    right: str
    token: str
    count: int  # the pair's count when it was chosen
    replaced: int  # occurrences actually merged (fewer than count when a pair overlaps: "a a a")
    words_touched: int  # distinct words in which the pair was merged
    new: bool  # False when another pair had already built the same string
    changes: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)  # pair -> (before, after)
    runners_up: list[tuple[str, str, int]] = field(default_factory=list)  # the next best pairs then


class Trainer:
    """Byte-pair encoding with incremental pair counts: each merge touches only the words it
    changes. `step()` performs one merge; `train(n)` performs n.

    State:
      vocab        id -> token string; the alphabet first, then one new token per merge
      words        each distinct word as a list of token ids, with `counts` (its frequency)
      pair_counts  (left id, right id) -> how often that pair of adjacent tokens occurs
      heap         (-count, left, right, seq, word indices) entries; stale ones are skipped

    >>> t = Trainer({"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}, alphabet_for("hugpnbs", "char"))
    >>> [(s.left, s.right, s.count) for s in t.train(3)]
    [('u', 'g', 20), ('u', 'n', 16), ('h', 'ug', 15)]

    Ties: when two pairs have the same count, the pair with the smaller (left id, right id)
    wins. Ids number the alphabet in code-point order and then the merges in the order made.
    This is Hugging Face `tokenizers`' rule (bpe/trainer.rs: `Merge::cmp` compares count, then
    the pair in ascending order), so both trainers produce the same merges.
    """

    def __init__(self, word_counts: Mapping[str, int], alphabet: Sequence[str], trace: bool = False):
        self.vocab: list[str] = list(alphabet)
        self.ids: dict[str, int] = {s: i for i, s in enumerate(self.vocab)}
        self.trace = trace  # record runners-up and count changes per step (costs some time)
        self.word_index: dict[str, int] = {w: i for i, w in enumerate(word_counts)}
        self.counts: list[int] = list(word_counts.values())
        flat, starts = _as_ids(list(word_counts), self.ids)
        with _no_cycle_collector():
            self.words: list[list[int]] = [flat[s:e] for s, e in zip(starts, starts[1:])]
        self.total_tokens = sum(len(w) * n for w, n in zip(self.words, self.counts))
        self.steps: list[MergeStep] = []
        self.pair_counts: dict[tuple[int, int], int] = defaultdict(int)
        self.heap: list = []
        self._seq = itertools.count()  # unique tie-breaker so heap entries never compare word lists
        for (a, b), n, pos in _count_pairs(flat, starts, self.counts, len(self.vocab)):
            self.pair_counts[a, b] = n
            self.heap.append((-n, a, b, next(self._seq), pos))
        heapq.heapify(self.heap)  # one O(n) pass instead of a push per pair

    def _push(self, where: Mapping[tuple[int, int], set[int]]) -> None:
        """Queue each pair with its current count and the words to look in when it is merged.

        Rarely, a pair already queued is created again in other words (its token was built by
        two different merges, "t"+"he" and "th"+"e"): it then gets a second entry listing just
        those words, and, as in `tokenizers`, each entry is merged in turn.
        """
        for (a, b), pos in where.items():
            n = self.pair_counts[(a, b)]
            if n > 0:
                heapq.heappush(self.heap, (-n, a, b, next(self._seq), pos))

    def _pop(self) -> tuple | None:
        """The best queued pair whose count is still current (lazy invalidation).

        An entry goes stale when a merge changes its pair's count; rather than search the heap
        for it, we re-queue it with the current count when it surfaces.
        """
        while self.heap:
            neg, a, b, _, pos = entry = heapq.heappop(self.heap)
            now = self.pair_counts.get((a, b), 0)
            if -neg == now:
                return entry
            if now > 0:
                heapq.heappush(self.heap, (-now, a, b, next(self._seq), pos))
        return None

    def peek(self, k: int = 5) -> list[tuple[int, int, int]]:
        """The k pairs that would be merged next, as (left id, right id, count), without merging."""
        found = []
        while len(found) < k and (entry := self._pop()) is not None:
            found.append(entry)
        for entry in found:
            heapq.heappush(self.heap, entry)
        out, listed = [], set()
        for neg, a, b, _, _ in sorted(found):
            if (a, b) not in listed:  # one pair may have two queued entries (see `step`)
                listed.add((a, b))
                out.append((a, b, -neg))
        return out

    def step(self) -> MergeStep | None:
        """Merge the most frequent adjacent pair everywhere it occurs; None when none is left."""
        entry = self._pop()
        if entry is None:
            return None
        neg, a, b, _, pos = entry
        token = self.vocab[a] + self.vocab[b]
        new = token not in self.ids  # a string can be built twice ("t"+"he", "th"+"e"): one id
        if new:
            self.ids[token] = len(self.vocab)
            self.vocab.append(token)
        tid = self.ids[token]
        deltas: dict[tuple[int, int], int] = defaultdict(int)  # pair -> change in its count
        where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pairs this merge created -> their words
        replaced = touched = 0
        words, counts = self.words, self.counts
        for i in pos:  # only words that contained the pair; the rest keep their counts
            merged = merge_word(words[i], a, b, tid, counts[i], deltas, where, i)
            if merged:
                touched += 1
                replaced += merged * counts[i]
        before = {p: self.pair_counts.get(p, 0) for p in deltas} if self.trace else {}
        for pair, d in deltas.items():
            self.pair_counts[pair] += d
        # subtle: the merged pair's own count is left as it was (as in `tokenizers`); its heap
        # entry is gone, and it only comes back if another pair rebuilds the same token.
        self._push(where)
        self.total_tokens -= replaced
        step = MergeStep(len(self.steps) + 1, self.vocab[a], self.vocab[b], token, -neg, replaced, touched, new)
        if self.trace:
            step.changes = {(self.vocab[x], self.vocab[y]): (before[(x, y)], self.pair_counts[(x, y)])
                            for (x, y) in deltas if before[(x, y)] != self.pair_counts[(x, y)]}
            step.runners_up = [(self.vocab[x], self.vocab[y], n) for x, y, n in self.peek(5)]
        self.steps.append(step)
        return step

    def train(self, merges: int | None = None, vocab_size: int | None = None) -> list[MergeStep]:
        """Merge until `merges` more steps are done or the vocabulary has `vocab_size` tokens,
        or until no pair is left. Returns the steps made by this call."""
        done: list[MergeStep] = []
        with _no_cycle_collector():
            while (merges is None or len(done) < merges) and (vocab_size is None or len(self.vocab) < vocab_size):
                step = self.step()
                if step is None:
                    break
                done.append(step)
        return done

    def tokens(self, word: str) -> list[str]:
        """The current tokens of one training word (given as symbols)."""
        return [self.vocab[t] for t in self.words[self.word_index[word]]]

    @property
    def merges(self) -> list[tuple[str, str]]:
        return [(s.left, s.right) for s in self.steps]


def merge_word(word: list[int], a: int, b: int, new: int, n: int = 1, deltas: dict | None = None,
               where: dict | None = None, index: int = 0) -> int:
    """Replace each (a, b) in word, in place, left to right, by `new`; return how many were merged.

    Each merge changes the pairs next to it, by the word's count n: the token before loses its
    pair with a and gains one with `new`, the token after its pair with b. Those changes are
    added to `deltas` (a defaultdict(int): pair -> change), and the word's `index` to `where[pair]`
    (a defaultdict(set)) for each pair gained.

    >>> word, deltas = [1, 2, 3, 1, 2], defaultdict(int)
    >>> merge_word(word, 1, 2, 9, 1, deltas), word, dict(deltas)
    (2, [9, 3, 9], {(2, 3): -1, (9, 3): 1, (3, 1): -1, (3, 9): 1})
    >>> word, deltas = [1, 1, 1, 1], defaultdict(int)
    >>> merge_word(word, 1, 1, 9, 1, deltas), word, dict(deltas)   # overlapping: 3 pairs, 2 merged
    (2, [9, 9], {(1, 1): -1, (9, 1): 0, (9, 9): 1})

    The pair's own occurrences are not counted down (see `Trainer.step`).
    """
    deltas = defaultdict(int) if deltas is None else deltas
    where = defaultdict(set) if where is None else where
    merged, j, left = 0, -1, word.count(a)  # list.count and list.index scan at C speed
    while left:
        j = word.index(a, j + 1)
        left -= 1
        last = len(word) - 1
        if j == last or word[j + 1] != b:
            continue
        if j:  # the token before now neighbours the new token
            x = word[j - 1]
            lost, gained = (x, a), (x, new)
            deltas[lost] -= n
            deltas[gained] += n
            where[gained].add(index)
        if j + 1 < last:  # and so does the token after
            y = word[j + 2]
            lost, gained = (b, y), (new, y)
            deltas[lost] -= n
            deltas[gained] += n
            where[gained].add(index)
        word[j:j + 2] = (new,)
        merged += 1
        left -= a == b  # the b merged was also an a
    return merged


@contextlib.contextmanager
def _no_cycle_collector():
    """Pause Python's cycle collector: training allocates millions of small tuples and lists but
    makes no reference cycles, so the collector would only scan them again and again (it cost
    about 20% of training, and a tenth of building the word lists)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _as_ids(words: list[str], ids: Mapping[str, int]) -> tuple[list[int], list[int]]:
    """All words as one flat list of symbol ids, and where each word starts (plus the end).

    numpy maps the characters of all words at once (each symbol is one character); a symbol
    outside the alphabet raises KeyError, as a dict lookup would.
    """
    import numpy as np

    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    starts = np.concatenate(([0], np.cumsum(lengths)))
    cps = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32)
    singles = {s: i for s, i in ids.items() if len(s) == 1}
    alphabet = np.array(sorted(ord(s) for s in singles), dtype=np.uint32)
    id_of = np.array([singles[chr(c)] for c in alphabet.tolist()], dtype=np.int64)
    at = np.searchsorted(alphabet, cps).clip(max=max(len(alphabet) - 1, 0))
    if len(cps) and (not len(alphabet) or (alphabet[at] != cps).any()):
        missing = cps[alphabet[at] != cps] if len(alphabet) else cps
        raise KeyError(chr(int(missing[0])))
    return id_of[at].tolist(), starts.tolist()


def _count_pairs(flat: list[int], starts: list[int], counts: list[int], size: int):
    """((left, right), count, word indices) for each adjacent pair of symbols in the words,
    counted at array speed: each occurrence weighted by its word's count, each word listed once."""
    import numpy as np

    ids = np.asarray(flat, dtype=np.int64)
    word_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    inside = word_of[:-1] == word_of[1:]  # a pair never spans two words
    code = ids[:-1][inside] * size + ids[1:][inside]
    word = word_of[:-1][inside]
    order = np.lexsort((word, code))
    code, word = code[order], word[order]
    weight = np.asarray(counts, dtype=np.int64)[word]
    first = np.flatnonzero(np.r_[True, code[1:] != code[:-1]]) if len(code) else np.zeros(0, dtype=np.int64)
    totals = np.add.reduceat(weight, first) if len(code) else weight
    fresh = np.r_[True, (code[1:] != code[:-1]) | (word[1:] != word[:-1])] if len(code) else np.zeros(0, bool)
    kept_code, kept_word = code[fresh], word[fresh]  # each (pair, word) once
    bounds = np.searchsorted(kept_code, code[first])
    lists = np.split(kept_word, bounds[1:]) if len(code) else []
    for c, n, pos in zip(code[first].tolist(), totals.tolist(), lists):
        yield divmod(c, size), n, pos.tolist()


# ---- 4. encoding ---------------------------------------------------------------------------

UNK = "<unk>"  # char level only: a character the corpus never showed (byte level has all 256)


def encode_word(parts: list[str], ranks: Mapping[tuple[str, str], int]) -> tuple[list[str], list[tuple[int, str, str]]]:
    """Apply learned merges to one word: always the earliest-learned (lowest rank) pair first.

    Returns the tokens and the merges applied, in order, as (rank, left, right).

    >>> encode_word(list("hugs"), {("u", "g"): 0, ("h", "ug"): 1, ("ug", "s"): 2})
    (['hug', 's'], [(0, 'u', 'g'), (1, 'h', 'ug')])

    "ug"+"s" never applies: once "h"+"ug" (rank 1) has merged, no "ug" is left to pair with "s".
    """
    applied: list[tuple[int, str, str]] = []
    never = len(ranks)
    while len(parts) > 1:
        rank, i = min((ranks.get(p, never), i) for i, p in enumerate(zip(parts, parts[1:])))
        if rank == never:
            break
        left, right = parts[i], parts[i + 1]
        applied.append((rank, left, right))
        out, j = [], 0
        while j < len(parts):  # every occurrence of this pair in the word, left to right
            if j + 1 < len(parts) and parts[j] == left and parts[j + 1] == right:
                out.append(left + right)
                j += 2
            else:
                out.append(parts[j])
                j += 1
        parts = out
    return parts, applied


@dataclass
class Model:
    """A trained BPE tokenizer: the vocabulary, the merges in order, and how words were split."""

    vocab: list[str]
    merges: list[tuple[str, str]]
    level: Level = "byte"
    how: PreTokenize = "gpt2"

    def __post_init__(self) -> None:
        self.ranks: dict[tuple[str, str], int] = {}
        for rank, pair in enumerate(self.merges):
            self.ranks.setdefault(pair, rank)  # a pair merged twice keeps its first rank
        self.ids = {s: i for i, s in enumerate(self.vocab)}
        if self.level == "char" and UNK not in self.ids:
            self.ids[UNK] = len(self.vocab)
            self.vocab = [*self.vocab, UNK]

    def encode_words(self, text: str) -> list[tuple[str, list[str], list[tuple[int, str, str]]]]:
        """(word, tokens, merges applied) for each pre-tokenized word of text."""
        out = []
        for word in pretokenize(text, self.how):
            parts = [c if c in self.ids else UNK for c in to_symbols(word, self.level)]
            out.append((word, *encode_word(parts, self.ranks)))
        return out

    def encode(self, text: str) -> list[int]:
        return [self.ids[t] for _, tokens, _ in self.encode_words(text) for t in tokens]

    def token_bytes(self, token: str) -> bytes:
        """The bytes a token stands for (a byte-level token may be part of a character)."""
        if self.level == "byte":
            return bytes(CHAR_BYTE[c] for c in token)
        return b"" if token == UNK else token.encode("utf-8")

    def show(self, token: str) -> str:
        """A token as text a learner can read: spaces visible as '␣'."""
        if self.level == "byte":
            token = self.token_bytes(token).decode("utf-8", errors="replace")
        return token.replace(" ", "␣").replace("\n", "⏎") if token != UNK else UNK


# ---- 5. export: a Hugging Face `tokenizers` file that /tokenize and /compare can load ---------

def to_hf(model: Model):
    """The model as a `tokenizers.Tokenizer` that encodes exactly like `Model.encode`."""
    from tokenizers import Regex, Tokenizer as HFTokenizer, decoders, models, pre_tokenizers

    merges = list(dict.fromkeys(model.merges))  # each pair once, at its first rank
    vocab = {s: i for i, s in enumerate(model.vocab)}
    unk = UNK if model.level == "char" else None
    tok = HFTokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk))
    if model.level == "byte":
        # ByteLevel with its regex is GPT-2's split; without, it only maps bytes to characters
        byte = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=model.how == "gpt2")
        steps = {"whitespace": [pre_tokenizers.Whitespace(), byte]}.get(model.how, [byte])
        tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
        tok.decoder = decoders.ByteLevel()
    else:
        if model.how == "gpt2":
            tok.pre_tokenizer = pre_tokenizers.Split(Regex(GPT2_PATTERN), behavior="isolated")
        elif model.how == "whitespace":
            tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.Fuse()  # tokens joined as they are (no spaces added between)
    return tok


# ---- corpora -------------------------------------------------------------------------------

SAMPLE = """\
A tokenizer turns text into a sequence of tokens, and a language model only ever sees those
tokens. Byte-pair encoding builds its vocabulary from a corpus: it starts from single bytes or
characters, counts how often each pair of neighbouring tokens occurs, and merges the most
frequent pair into a new token. Then it counts again and merges again. Frequent words such as
the, and, of and to become single tokens early; rare words stay split into pieces. The order of
the merges is the tokenizer: to encode a new text, the same merges are applied in the same order.
A larger vocabulary means fewer tokens per word, but a bigger embedding table for the model to
learn. The cat sat on the mat, and the other cat sat on the other mat.
"""

_DOCSTRING = re.compile(r'"""(.*?)"""', re.S)


@functools.lru_cache(maxsize=2)  # reading the library takes seconds; the answer never changes
def python_docs_text(max_bytes: int, packages: bool = False) -> str:
    """Real English prose available offline everywhere Python runs: the standard library's
    docstrings (about 2 MB; then, with `packages`, those of installed packages), files in sorted
    order, up to `max_bytes` of UTF-8. Deterministic for one Python version (and one set of
    packages). Tests and the benchmark build their 1 MB and 5 MB corpora this way."""
    import sysconfig

    roots = [Path(sysconfig.get_paths()["stdlib"])] + ([Path(sysconfig.get_paths()["purelib"])] if packages else [])
    skip = {"test", "tests", "idlelib", "site-packages", "lib2to3", "turtledemo"}
    parts, total = [], 0
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if skip & set(path.relative_to(root).parts):
                continue
            try:
                source = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            for m in _DOCSTRING.finditer(source):
                doc = m.group(1).strip()
                if len(doc) > 80 and doc.count(" ") > len(doc) / 12:  # prose, not a table of symbols
                    # one line per paragraph, indentation gone: reads like prose, not like code
                    doc = "\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", doc) if p.strip())
                    parts.append(doc)
                    total += len(doc.encode("utf-8")) + 2
                    if total >= max_bytes:  # cut the last one so the corpus is max_bytes exactly
                        return "\n\n".join(parts).encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    return "\n\n".join(parts)


def lessons_text() -> str:
    """The text of the curriculum's own lessons (every string in lessons/*.yaml)."""
    import yaml
    from tutor.plugins import builtin_dir

    def strings(node) -> Iterable[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)

    out = []
    for path in sorted(builtin_dir("lessons").glob("*.y*ml")):
        try:
            out += strings(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            continue
    return "\n".join(out)


# ---- 6. the /bpe tool ----------------------------------------------------------------------

MAX_MERGES = 5000
TABLE_ROWS = 100  # merges shown in the train table (all are in `data`)
SMALL = 400  # a corpus of at most this many starting tokens is shown as sequences after each merge
NONE_LIMIT = 20_000  # characters: without pre-tokenization the corpus is one long word
Action = Literal["train", "step", "encode", "save", "parents", "sweep", "compare"]
Corpus = Literal["lessons", "sample", "python-docs"]


def bpe(ctx,
        action: Annotated[Action, Arg("what to do (see the description)")],
        text: Text = "",
        *,
        merges: Annotated[int | None, Arg("how many merges to make (train, sweep)", min=0, max=MAX_MERGES)] = None,
        vocab_size: Annotated[int | None, Arg("train until the vocabulary has this many tokens", min=2,
                                              max=256 + MAX_MERGES)] = None,
        level: Annotated[Level, Arg("start from the 256 bytes (like GPT-2) or from the characters seen")] = "byte",
        pretokenize: Annotated[PreTokenize, Arg("split into words first: GPT-2's regex, at spaces and "
                                                "punctuation, or not at all")] = "gpt2",
        file: Annotated[File | None, Arg("train on an uploaded plain-text file (its path)",
                                         accept=(".txt", ".md"))] = None,
        corpus: Annotated[Corpus | None, Arg("train on a built-in corpus: the lessons' text, a short "
                                             "English sample, or 1 MB of Python's docstrings")] = None,
        ) -> Reply:
    """Train a toy BPE tokenizer merge by merge, step through it, and compare it with real ones.

    `/bpe train [--merges N | --vocab-size V] TEXT` learns merges from TEXT (or `--file PATH`,
    or `--corpus lessons|sample|python-docs`) and shows each merge: the pair, its count, the
    pairs that came next, the new token. `/bpe step [TEXT]` makes one merge at a time and shows
    which pair counts changed. Then: `/bpe encode TEXT` (which merges apply, in which order),
    `/bpe save NAME` (a tokenizer for /tokenize and /count), `/bpe parents` (where tokens of
    length 3 come from), `/bpe sweep` (vocabulary size vs tokens per word, a chart) and
    `/bpe compare WORDS` (WordPiece, Unigram and SentencePiece trained on the same corpus).
    data.merges holds token strings as a tokenizer.json does (byte level: a space is 'Ġ').
    """
    state = ctx.state("bpe")
    text = valid_unicode(text)
    source = _source(ctx, text if action in ("train", "step") else "", file, corpus)
    if action == "train":
        return _train(ctx, state, source, merges, vocab_size, level, pretokenize)
    if action == "step":
        return _step(state, source, level, pretokenize)
    if source is not None:
        raise ToolError(f"--file and --corpus go with `/bpe train` or `/bpe step`, not `/bpe {action}`.")
    if action == "encode":
        return _encode(state, text)
    if action == "save":
        return _save(ctx, state, text.strip())
    if action == "parents":
        return _parents(state)
    if action == "sweep":
        return _sweep(state, merges)
    return _compare(state, text, vocab_size)


def _source(ctx, text: str, file: str | None, corpus: str | None) -> tuple[str, str] | None:
    """(corpus text, where it came from), or None when nothing was given."""
    given = [x for x in (text.strip(), file, corpus) if x]
    if len(given) > 1:
        raise ToolError("Give one corpus: a TEXT, or --file PATH, or --corpus NAME (not several).")
    if file:
        return ctx.read_upload(file), f"file {Path(file).name}"
    if corpus == "lessons":
        found = lessons_text()
        return (found, "the lessons' text") if found.strip() else (SAMPLE, "a short English sample "
                                                                   "(no lesson text was found)")
    if corpus == "sample":
        return SAMPLE, "a short English sample"
    if corpus == "python-docs":
        return python_docs_text(1_000_000), "1 MB of Python's standard-library docstrings"
    return (text, "your text") if text.strip() else None


def _fresh(source: tuple[str, str] | None, level: Level, how: PreTokenize) -> dict:
    """A new trainer on a corpus, with its settings: the learner's state once it is accepted."""
    if source is None:
        raise ToolError("The corpus is empty. Give a text, e.g. `/bpe train the cat sat on the mat`, "
                        "or `--file PATH` (an upload), or `--corpus lessons`.")
    text, label = source
    if not text.strip():
        raise ToolError(f"The corpus ({label}) is empty or only whitespace; give some text to learn from.")
    if how == "none" and len(text) > NONE_LIMIT:
        raise ToolError(f"Without pre-tokenization the whole corpus is one word; keep it under "
                        f"{NONE_LIMIT:,} characters (got {len(text):,}), or use --pretokenize gpt2.")
    words = count_words([text], how, level)
    if not words:
        raise ToolError(f"After {how} pre-tokenization the corpus ({label}) has no words to learn from.")
    order = [to_symbols(w, level) for w in pretokenize(text, how)]
    fresh = dict(trainer=Trainer(words, alphabet_for(words, level), trace=True), text=text, label=label,
                 level=level, how=how, order=order if sum(map(len, order)) <= SMALL else None)
    fresh["start"] = _sequences(fresh)
    return fresh


def _start(state: dict, fresh: dict) -> Trainer:
    state.clear()
    state.update(fresh)
    return state["trainer"]


def _trained(state: dict) -> Trainer:
    if "trainer" not in state:
        raise ToolError("Nothing trained yet. Start with `/bpe train the cat sat on the mat` "
                        "or `/bpe train --corpus lessons --merges 200`.")
    return state["trainer"]


def _model(state: dict) -> Model:
    t = _trained(state)
    return Model(t.vocab, t.merges, state["level"], state["how"])


def _show(state: dict, token: str) -> str:
    return Model([], [], state["level"], state["how"]).show(token) if token else token


def _sequences(state: dict) -> str | None:
    """The small corpus as current tokens, words two spaces apart (None for a big corpus)."""
    if not state.get("order"):
        return None
    t = state["trainer"]
    return "  ".join(" ".join(_show(state, tok) for tok in t.tokens(w)) for w in state["order"])


def _pair(state: dict, left: str, right: str) -> str:
    return f"{_show(state, left)} + {_show(state, right)}"


def _train(ctx, state, source, merges, vocab_size, level, how):
    if merges is not None and vocab_size is not None:
        raise ToolError("Give --merges or --vocab-size, not both (vocabulary size = alphabet + merges).")
    fresh = _fresh(source, level, how)
    start = len(fresh["trainer"].vocab)
    if vocab_size is not None and vocab_size <= start:
        raise ToolError(f"--vocab-size must be more than the starting alphabet, {start} tokens "
                        f"({'256 bytes' if level == 'byte' else 'the characters of this corpus'}); got {vocab_size}.")
    _start(state, fresh)
    want = merges if merges is not None else (vocab_size - start if vocab_size else 20)
    return _training(ctx, state, want, vocab_size)


def _training(ctx, state, want, vocab_size):
    """Train, yielding progress for long runs, then the reply with every merge."""
    trainer, level, how = state["trainer"], state["level"], state["how"]
    start = len(trainer.vocab)
    steps, lines = [], [f"start: {state['start']}"] if state["start"] else []
    limit = None if vocab_size is None else vocab_size  # `want` is exact for --merges, a bound otherwise

    def more() -> bool:
        return not ctx.cancel.is_set() and (len(trainer.vocab) < limit if limit else len(steps) < want)

    # The first merges one at a time: their runners-up and (small corpus) the corpus after each.
    while more() and len(steps) < TABLE_ROWS and (step := trainer.step()) is not None:
        steps.append(step)
        if state["start"] and len(lines) <= 50:
            lines.append(f"{step.number} {_show(state, step.token)}: {_sequences(state)}")
    # The rest in chunks, untraced (faster), with progress for the page.
    trainer.trace = False
    while more() and (not steps or len(steps) >= TABLE_ROWS):
        chunk = trainer.train(merges=None if limit else min(250, want - len(steps)),
                              vocab_size=min(limit, len(trainer.vocab) + 250) if limit else None)
        if not chunk:
            break
        steps += chunk
        yield Reply(text=f"Training: {len(steps):,} of about {want:,} merges…", progress=min(len(steps) / want, 1),
                    done=False)
    trainer.trace = True
    stopped = not ctx.cancel.is_set() and (len(trainer.vocab) < limit if limit else len(steps) < want)
    rows = [[s.number, _pair(state, s.left, s.right), s.count,
             ", ".join(f"{_pair(state, l, r)} ({c})" for l, r, c in s.runners_up[:3]),
             _show(state, s.token) + ("" if s.new else " (already in vocabulary)")] for s in steps[:TABLE_ROWS]]
    kind = "256 bytes" if level == "byte" else f"{start} characters"
    parts = [f"**{len(steps)} merge{'s' * (len(steps) != 1)}** learned from {state['label']} "
             f"({len(state['text']):,} characters, {len(trainer.words):,} distinct words after `{how}` "
             f"pre-tokenization). Vocabulary: {kind} + {len(trainer.vocab) - start} = **{len(trainer.vocab):,} tokens**."]
    if stopped:
        parts.append(f"Stopped early: asked for {want} merges, but after {len(steps)} no two adjacent tokens "
                     "are left to merge (every word is one token). Give a longer text for more merges.")
    if ctx.cancel.is_set():
        parts.append("Stopped by you.")
    if len(steps) > TABLE_ROWS:
        parts.append(f"The table shows the first {TABLE_ROWS} merges; all {len(steps)} are in the data.")
    if lines:
        parts.append("The corpus as tokens after each merge (words two spaces apart, ␣ = space):\n```\n"
                     + "\n".join(lines) + "\n```")
    parts.append("Each merge takes the most frequent pair of *adjacent* tokens; ties go to the pair made "
                 "of earlier tokens. `/bpe step` continues one merge at a time.")
    data = {"merges": [[s.left, s.right] for s in steps], "counts": [s.count for s in steps],
            "tokens": [_show(state, s.token) for s in steps], "vocab_size": len(trainer.vocab),
            "alphabet_size": start, "asked": want, "stopped_early": stopped, "words": len(trainer.words),
            "level": level, "pretokenize": how, "corpus": state["label"]}
    if state["start"]:
        data["sequences"] = [l.split(": ", 1)[1] for l in lines]
    yield Reply(text="\n\n".join(parts), data=data,
                table=Table(["step", "pair", "count", "next best (count)", "new token"], rows),
                buttons=["/bpe step", "/bpe parents", "/bpe sweep", "/bpe encode unhappiness",
                         "/bpe compare tokenization unhappiness", "/bpe save mybpe"])


def _step(state, source, level, how):
    trainer = _start(state, _fresh(source, level, how)) if source else _trained(state)
    trainer.trace = True
    before = _sequences(state)
    step = trainer.step()
    if step is None:
        raise ToolError(f"No adjacent pair is left: after {len(trainer.steps)} merges every word is a single "
                        "token. Start again with a longer text: `/bpe step YOUR TEXT`.")
    show = lambda tok: _show(state, tok)  # noqa: E731
    changes = sorted(step.changes.items(), key=lambda kv: (-abs(kv[1][1] - kv[1][0]), kv[0]))
    rows = [[_pair(state, l, r), b, a, f"{a - b:+d}"] for (l, r), (b, a) in changes[:30]]
    parts = [f"**Merge {step.number}**: `{show(step.left)}` + `{show(step.right)}` → `{show(step.token)}` "
             f"(count {step.count}: the most frequent pair of adjacent tokens right now)."]
    if step.replaced != step.count:
        parts.append(f"It was merged {step.replaced} times, not {step.count}: overlapping pairs (like the "
                     "three `a a` pairs in `a a a a`) cannot all merge.")
    parts.append(f"It occurred in {step.words_touched} of {len(trainer.words)} distinct words. Only pairs "
                 "next to the new token in those words changed count (table); every other count is kept, "
                 "not recounted. Counted are pairs of *current* adjacent tokens, each weighted by how often "
                 "its word occurs — never longer n-grams.")
    if len(changes) > 30:
        parts.append(f"The table shows the 30 largest of {len(changes):,} count changes; all are in the data.")
    if before:
        parts.append(f"```\nbefore: {before}\nafter:  {_sequences(state)}\n```")
    if step.runners_up:
        parts.append("Next in line: " + ", ".join(f"`{_pair(state, l, r)}` ({c})" for l, r, c in step.runners_up))
    else:
        parts.append("No pair is left to merge now.")
    return Reply(text="\n\n".join(parts),
                 table=Table(["pair", "count before", "count after", "change"], rows) if rows else None,
                 data={"step": step.number, "pair": [step.left, step.right], "count": step.count,
                       "replaced": step.replaced, "token": step.token, "words_touched": step.words_touched,
                       "words": len(trainer.words), "vocab_size": len(trainer.vocab),
                       "changes": [[l, r, b, a] for (l, r), (b, a) in changes],
                       "next": [[l, r, c] for l, r, c in step.runners_up],
                       "merges": [list(m) for m in trainer.merges]},
                 buttons=["/bpe step", "/bpe parents"])


def _encode(state, text):
    model = _model(state)
    if not text.strip():
        raise ToolError("Give a text to encode, e.g. `/bpe encode the cat sat`.")
    words = model.encode_words(text)
    rows, tokens, applied = [], [], []
    for word, toks, order in words:
        tokens += toks
        applied.append([[rank + 1, l, r] for rank, l, r in order])
        if len(rows) < 40:
            steps = " → ".join(f"#{rank + 1} {model.show(l)}+{model.show(r)}" for rank, l, r in order) or "(none)"
            rows.append([model.show(to_symbols(word, model.level)), steps, " · ".join(map(model.show, toks))])
    ids = [model.ids[t] for t in tokens]
    from tutor import Span
    spans = [Span(model.show(t), i, group=k % 6) for k, (t, i) in enumerate(zip(tokens, ids))]
    note = f" (table: the first 40 of {len(words)} words)" if len(words) > 40 else ""
    text_out = (f"**{len(tokens)} tokens** for {len(text)} characters with {len(model.merges)} merges{note}. "
                "In each word the earliest-learned merge that fits applies first (#N = merge number), "
                "then the next, until none fits; the order follows training, not the text.")
    unknown = sum(t == UNK for t in tokens)
    if unknown:
        text_out += (f"\n\n{unknown} character(s) never seen in training became `{UNK}`: char level has no "
                     "bytes to fall back on. Byte level (`--level byte`) can encode any text.")
    return Reply(text=text_out, spans=spans, table=Table(["word", "merges applied, in order", "tokens"], rows),
                 data={"tokens": [model.show(t) for t in tokens], "token_strings": tokens, "ids": ids,
                       "merges_applied": applied, "unknown": unknown})


def _save(ctx, state, name):
    model = _model(state)
    if not model.merges:
        raise ToolError("The tokenizer has no merges yet; train some first (`/bpe train --merges 50 ...`).")
    # the core keeps saved tokenizers (this learner's own folder under TUTOR_HOME/tokenizers/): it
    # checks the name and writes atomically, so /tokenize, /vocab and /count see it now and after
    # a restart, for this learner only (another learner saving the same name gets their own)
    spec = save_tokenizer(ctx.tutor, name, to_hf(model), family="trained here with /bpe",
                          description=f"{model.level}-level BPE, {len(model.merges)} merges on {state['label']}",
                          owner=ctx.session.learner_id)
    folder = Path(spec.source).parent
    probe = "The cat sat on the mat, unhappily."
    same = ctx.tokenizer(name).encode(probe) == model.encode(probe)
    return Reply(text=f"Saved **{name}** ({len(model.vocab):,} tokens, {len(model.merges)} merges) as a Hugging Face "
                      f"`tokenizers` file: {folder / 'tokenizer.json'}. It now works with /tokenize and /count "
                      f"next to GPT-2, cl100k_base and o200k_base" + ("." if same else
                      "; WARNING: it encodes a test sentence differently from /bpe encode."),
                 data={"name": name, "path": str(folder / "tokenizer.json"), "vocab_size": len(model.vocab),
                       "merges": len(model.merges), "same_as_bpe_encode": same},
                 buttons=[f"/count {name} The cat sat on the mat", f"/tokenize {name} The cat sat on the mat"])


def _parents(state):
    trainer = _trained(state)
    steps = trainer.steps
    if not steps:
        raise ToolError("No merges yet: `/bpe train --merges 50 ...` first.")
    made = {}  # token -> step that first made it (alphabet tokens: 0)
    for s in steps:
        made.setdefault(s.token, s.number)
    size = (lambda t: len(Model([], [], "byte").token_bytes(t))) if state["level"] == "byte" else len
    rows, length3 = [], []
    for s in steps:
        if size(s.token) == 3:
            born = [made.get(p, 0) for p in (s.left, s.right)]
            length3.append([_show(state, s.token), _show(state, s.left), _show(state, s.right), s.number, *born])
            rows.append([s.number, _show(state, s.token), _pair(state, s.left, s.right),
                         " and ".join(f"merge {b}" if b else "alphabet" for b in born)])
    # A longer token before a shorter one: the earliest merge whose token is shorter than one made before it.
    longest, example = (0, None), None
    for s in steps:
        if example is None and size(s.token) < longest[0]:
            example = {"longer": _show(state, longest[1].token), "longer_step": longest[1].number,
                       "shorter": _show(state, s.token), "shorter_step": s.number}
        if size(s.token) > longest[0]:
            longest = (size(s.token), s)
    parents_first = all(made.get(p, 0) < s.number for s in steps for p in (s.left, s.right))
    unit = "bytes" if state["level"] == "byte" else "characters"
    parts = [f"**{len(length3)} tokens of 3 {unit}** among {len(steps)} merges. Each is made of exactly two "
             "tokens that existed before it (one of them 2 long, the other 1), so some 2-long token always "
             "comes first — but not every 2-long pair becomes a 3-long token." if length3 else
             f"No token of 3 {unit} yet in {len(steps)} merges; train more merges."]
    if example:
        parts.append(f"Yes, a longer token can come before shorter ones: `{example['longer']}` (merge "
                     f"{example['longer_step']}) came before `{example['shorter']}` (merge {example['shorter_step']}). "
                     "BPE picks by frequency, never by length.")
    else:
        parts.append("In these merges every token is at least as long as all before it; train more merges "
                     "and a frequent short pair will follow a long token.")
    return Reply(text="\n\n".join(parts), table=Table(["merge", "token", "parents", "parents made at"], rows[:60]),
                 data={"length3": length3, "longer_before_shorter": example is not None, "example": example,
                       "parents_made_first": parents_first,
                       "lengths": [size(s.token) for s in steps]})


def _sweep(state, merges):
    trainer = _trained(state)
    target = merges if merges else max(len(trainer.steps), 1000)
    words = count_words([state["text"]], state["how"], state["level"])
    fresh = Trainer(words, alphabet_for(words, state["level"]))
    n_words = max(len(state["text"].split()), 1)  # words as a reader counts them: between spaces
    sizes, per_word = [len(fresh.vocab)], [fresh.total_tokens / n_words]
    for step in iter(lambda: fresh.step() if len(fresh.steps) < target else None, None):
        if step.new:
            sizes.append(len(fresh.vocab))
            per_word.append(fresh.total_tokens / n_words)
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    ax.plot(sizes, per_word)
    ax.set_xlabel("vocabulary size (tokens)")
    ax.set_ylabel("average tokens per word")
    ax.set_title(f"BPE on {state['label']}")
    ax.grid(alpha=0.3)
    keep = sorted({round(i * (len(sizes) - 1) / 199) for i in range(200)}) if len(sizes) > 200 else range(len(sizes))
    return Reply(text=f"From {sizes[0]} to {sizes[-1]:,} tokens, the corpus goes from {per_word[0]:.2f} to "
                      f"{per_word[-1]:.2f} tokens per word ({n_words:,} words). Merges save fewer and fewer tokens: "
                      "the first ones take the most frequent pairs, and pair counts only fall. A bigger vocabulary "
                      "means shorter sequences but a bigger embedding table, and rarer tokens the model sees "
                      "less often in training.",
                 figure=fig, data={"vocab_sizes": [sizes[i] for i in keep],
                                   "tokens_per_word": [round(per_word[i], 4) for i in keep], "words": n_words})


def _compare(state, text, vocab_size):
    model = _model(state)
    words = text.split() or ["tokenization", "unhappiness", "cats", "the"]
    if len(words) > 20:
        raise ToolError(f"Give at most 20 words to compare (got {len(words)}).")
    size = vocab_size or len(model.vocab)
    key = (id(state["trainer"]), size)
    if state.get("compare", (None,))[0] != key:
        corpus = state["text"][:1_000_000]
        state["compare"] = (key, _other_tokenizers(corpus, size), wordpiece_vs_bpe(corpus, size))
    others, same = state["compare"][1], state["compare"][2]
    splits = {"our BPE": {w: [model.show(t) for _, toks, _ in model.encode_words(_spaced(w, model)) for t in toks]
                          for w in words}}
    failed = {}
    for name, encode in others.items():
        if isinstance(encode, str):
            failed[name] = encode
            continue
        splits[name] = {w: encode(w) for w in words}
    rows = [[w, *(" · ".join(splits[n][w]) for n in splits)] for w in words]
    parts = [f"Each tokenizer was trained on the same corpus ({state['label']}), vocabulary about {size:,}. "
             "BPE merges the most frequent pair. The WordPiece column is Hugging Face's WordPieceTrainer, "
             "which also merges by frequency (it runs a BPE trainer with `##` on word continuations) and "
             "then encodes WordPiece's way, longest match first. "
             + ("On this corpus its vocabulary is exactly BPE's with `##`. " if same.get("same_vocabulary") else
                f"On this corpus it shares {same.get('shared_fraction', 0):.1%} of its vocabulary with BPE's with "
                "`##` (pairs with equal counts are merged in an arbitrary order, so tied tokens can differ). ")
             + "The likelihood score usually described for WordPiece (count(ab) / (count(a) x count(b))) is "
             "a reconstruction (the Hugging Face course's): Google never published its trainer. Unigram "
             "starts big and prunes the pieces that matter least, then picks the most probable split. "
             "▁ marks a word start in SentencePiece; ␣ a space in ours."]
    parts += [f"{n}: could not train ({why})" for n, why in failed.items()]
    return Reply(text="\n\n".join(parts), table=Table(["word", *splits], rows),
                 data={"splits": splits, "vocab_size": size, "failed": failed, "wordpiece_vs_bpe": same})


def _spaced(word: str, model: Model) -> str:
    """A word as it appears inside running text: GPT-2-style words carry their leading space."""
    return " " + word if model.how == "gpt2" else word


def wordpiece_vs_bpe(text: str, size: int) -> dict:
    """Train tokenizers' WordPieceTrainer and a BpeTrainer with `##` continuations on the same lines
    and compare the two vocabularies (WordPieceTrainer wraps a BpeTrainer: they should match)."""
    from tokenizers import Tokenizer as HFTokenizer, models, pre_tokenizers, trainers

    lines = [l for l in text.splitlines() if l.strip()] or [text]
    vocabs = []
    for model, trainer in ((models.WordPiece(unk_token="[UNK]"),
                            trainers.WordPieceTrainer(vocab_size=size, special_tokens=["[UNK]"], show_progress=False)),
                           (models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"),
                            trainers.BpeTrainer(vocab_size=size, special_tokens=["[UNK]"], show_progress=False,
                                                continuing_subword_prefix="##"))):
        try:
            tok = HFTokenizer(model)
            tok.pre_tokenizer = pre_tokenizers.Whitespace()
            tok.train_from_iterator(lines, trainer)
        except Exception as e:  # noqa: BLE001 - the library's reason is the message
            return {"error": f"{type(e).__name__}: {e}"}
        vocabs.append(set(tok.get_vocab()))
    wp, bpe = vocabs
    # subtle: pairs with equal counts are merged in an arbitrary order (the trainer's ids come from
    # a hash map), so two runs, or the two trainers, may differ in a few tied tokens
    return {"same_vocabulary": wp == bpe, "differ": len(wp ^ bpe), "wordpiece_size": len(wp), "bpe_size": len(bpe),
            "shared_fraction": round(len(wp & bpe) / max(len(wp), 1), 4)}


def _other_tokenizers(text: str, size: int) -> dict:
    """name -> encode(word) -> pieces, for WordPiece, Unigram and SentencePiece trained on text
    (or name -> the reason it could not be trained)."""
    from tokenizers import Tokenizer as HFTokenizer, models, pre_tokenizers, trainers

    lines = [l for l in text.splitlines() if l.strip()] or [text]
    out: dict = {}

    def hf(name, model, trainer, pre):
        try:
            tok = HFTokenizer(model)
            tok.pre_tokenizer = pre
            tok.train_from_iterator(lines, trainer)
            out[name] = lambda w: tok.encode(w, add_special_tokens=False).tokens
        except Exception as e:  # noqa: BLE001 - the library's reason is the message
            out[name] = f"{type(e).__name__}: {e}"

    hf("WordPiece", models.WordPiece(unk_token="[UNK]"),
       trainers.WordPieceTrainer(vocab_size=size, special_tokens=["[UNK]"], show_progress=False),
       pre_tokenizers.Whitespace())
    hf("Unigram", models.Unigram(),
       trainers.UnigramTrainer(vocab_size=size, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False),
       pre_tokenizers.Metaspace())
    for kind in ("bpe", "unigram"):
        name = f"SentencePiece {'BPE' if kind == 'bpe' else 'Unigram'}"
        try:
            import sentencepiece as spm

            buf = io.BytesIO()
            spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf, model_type=kind,
                                           vocab_size=size, hard_vocab_limit=False, character_coverage=1.0,
                                           bos_id=-1, eos_id=-1, minloglevel=2, num_threads=1)
            sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
            out[name] = lambda w, sp=sp: sp.encode(w, out_type=str)
        except Exception as e:  # noqa: BLE001
            out[name] = f"{type(e).__name__}: {e}"
    return out


@hookimpl
def register_tools(register):
    register(bpe, example="/bpe train --merges 10 the cat sat on the mat; the cat ate the hat",
             phrases=['byte pair', 'bpe merge', 'train a tokenizer', 'train a bpe', 'my bpe', 'bpe tokenizer', 'bpe'])

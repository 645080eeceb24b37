"""Training seconds for 2,000 BPE merges on 1 MB and 5 MB of English: the project's trainer
(plugins/bpe.py) vs Hugging Face `tokenizers` (Rust) vs a recount-every-merge trainer in the
style of minbpe (below). Ratios come from one run, in one process.

    python bench/bench_bpe.py            # 1 MB and 5 MB; baselines: 2,000 merges on 200 KB
    python bench/bench_bpe.py --quick    # 1 MB only; baselines: 300 merges on 60 KB

The corpus is English prose available offline: Python's standard-library docstrings (about
2 MB), then docstrings of the installed packages, files in sorted order. Every trainer gets the
same texts and does its own GPT-2 pre-tokenization and word counting, which is timed with it.
Times are the best of 3 interleaved runs (2 with --quick). The slow baselines run in full on a
sample, and ours on the same sample, so their ratio is measured, not extrapolated (ours pays
fixed costs a small sample cannot hide, so the ratio is, if anything, low).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import Report, arguments  # noqa: E402

from tutor.builtin import bpe  # noqa: E402

MERGES = 2000


def english(n_bytes: int) -> list[str]:
    """n_bytes of docstrings (stdlib first, then installed packages), as paragraphs."""
    return bpe.python_docs_text(n_bytes, packages=True).split("\n\n")


def ours(texts: list[str], trace: bool = False) -> tuple[float, list]:
    t = time.perf_counter()
    words = bpe.count_words(texts, "gpt2", "byte")
    trainer = bpe.Trainer(words, bpe.alphabet_for(words, "byte"), trace=trace)
    trainer.train(vocab_size=256 + MERGES)
    return time.perf_counter() - t, trainer.merges


def rust(texts: list[str]) -> tuple[float, list]:
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    t = time.perf_counter()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=256 + MERGES, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    seconds = time.perf_counter() - t
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
              for m in json.loads(tok.to_str())["model"]["merges"]]
    return seconds, merges


# ---- the baseline: recount every pair after every merge (minbpe's get_stats / merge) ----------

def get_stats(words, counts):
    stats = Counter()
    for ids, n in zip(words, counts):
        for pair in zip(ids, ids[1:]):
            stats[pair] += n
    return stats


def merge(ids, pair, idx):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def recount(texts: list[str], merges: int) -> float:
    """Seconds for the recount-every-merge loop to make `merges` merges on deduplicated words
    with counts (kinder than minbpe): count all pairs, merge the best everywhere, repeat."""
    t = time.perf_counter()
    words = Counter(w for text in texts for w in bpe.pretokenize(text, "gpt2"))
    recount_merges([list(w.encode("utf-8")) for w in words], list(words.values()), merges)
    return time.perf_counter() - t


def minbpe_style(texts: list[str], merges: int) -> float:
    """Seconds for minbpe's RegexTokenizer.train loop as it is written (karpathy/minbpe, re-typed
    here, not vendored): every chunk of the text kept (no deduplication), all pairs recounted
    over all chunks after each merge. minbpe is not on the package index."""
    t = time.perf_counter()
    ids = [list(chunk.encode("utf-8")) for text in texts for chunk in bpe.pretokenize(text, "gpt2")]
    recount_merges(ids, [1] * len(ids), merges)
    return time.perf_counter() - t


def recount_merges(ids: list[list[int]], counts: list[int], merges: int) -> list[list[int]]:
    """The loop both peers share: count all pairs (each word weighted by its count), merge the
    most frequent everywhere, repeat `merges` times or until no pair is left."""
    for k in range(merges):
        stats = get_stats(ids, counts)
        if not stats:
            break
        pair = max(stats, key=stats.get)
        ids = [merge(w, pair, 256 + k) for w in ids]
    return ids


def ours_on(texts: list[str], merges: int) -> float:
    t = time.perf_counter()
    words = bpe.count_words(texts, "gpt2", "byte")
    bpe.Trainer(words, bpe.alphabet_for(words, "byte")).train(vocab_size=256 + merges)
    return time.perf_counter() - t


def sample(texts: list[str], n_bytes: int) -> list[str]:
    out, size = [], 0
    for text in texts:
        if size >= n_bytes:
            break
        out.append(text)
        size += len(text.encode()) + 2
    return out


def main() -> None:
    args = arguments(__doc__).parse_args()
    rep = Report("bpe", args.out)
    sizes, repeat = ([1], 2) if args.quick else ([1, 5], 3)
    print(f"{MERGES} merges, GPT-2 pre-tokenization, byte level; {os.cpu_count()} CPUs; "
          f"tokenizers uses {os.environ.get('RAYON_NUM_THREADS', 'all')} threads; best of {repeat}, interleaved")
    goals = {1: "<= 1.5", 5: "<= 1.1"}
    for mb in sizes:
        texts = english(mb * 1_000_000)
        size = sum(len(t.encode()) + 2 for t in texts)
        # interleaved, so a busy moment on a shared machine hurts no one trainer alone
        runs = [(ours(texts), rust(texts)) for _ in range(repeat)]
        (ours_s, ours_m), (rust_s, rust_m) = min(r[0] for r in runs), min(r[1] for r in runs)
        same = next((i for i, (a, b) in enumerate(zip(ours_m, rust_m)) if a != b), min(len(ours_m), len(rust_m)))
        rep.figure("P3", f"BPE {MERGES:,} merges, ours vs HF Rust, {size / 1e6:.0f} MB", ours_s / rust_s, goals[mb],
                   detail=f"{ours_s:.2f} vs {rust_s:.2f} s; merges equal to tokenizers: first {same} of "
                          f"{min(len(ours_m), len(rust_m))}")
    # the slow baselines, measured in full on a sample (not extrapolated), against ours on the same sample
    texts = english(1_000_000)
    n_bytes, merges = (60_000, 300) if args.quick else (200_000, MERGES)
    small = sample(texts, n_bytes)
    for name, fn, target in (("recount every merge", recount, ">= 80"), ("minbpe's loop", minbpe_style, ">= 1000")):
        slow = fn(small, merges)
        fast = min(ours_on(small, merges) for _ in range(repeat))
        rep.figure("P3", f"{name} vs ours, {merges} merges on {n_bytes / 1e3:.0f} KB", slow / fast, target,
                   detail=f"{slow:.1f} vs {fast:.3f} s, measured in full")


if __name__ == "__main__":
    main()

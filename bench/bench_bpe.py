"""Training seconds for 2,000 BPE merges on 1 MB and 5 MB of English: the project's trainer
(plugins/bpe.py) vs Hugging Face `tokenizers` (Rust) vs a recount-every-merge trainer in the
style of minbpe (below). Ratios come from one run, in one process.

    python bench/bench_bpe.py            # 1 MB and 5 MB
    python bench/bench_bpe.py --quick    # 1 MB only, shorter recount sample

The corpus is English prose available offline: Python's standard-library docstrings (about
2 MB), then docstrings of the installed packages, files in sorted order. Every trainer gets the
same texts and does its own GPT-2 pre-tokenization and word counting, which is timed with it.
Times are the best of 3 interleaved runs.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections import Counter

from tutor.builtin import bpe

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


def recount(texts: list[str], at=(0, 500, 1000, 1500, 2000), n: int = 10) -> tuple[float, str]:
    """Estimated seconds for minbpe's loop to make MERGES merges: count all pairs, merge the best
    everywhere, repeat. It runs on deduplicated words with counts (kinder than minbpe, which keeps
    every chunk). A full run takes many minutes, so `n` merges are timed from the corpus state
    after each number of merges in `at` (states made by our trainer), and the per-merge cost is
    integrated over 0..MERGES (trapezoid), plus the baseline's own pre-tokenization."""
    t = time.perf_counter()
    words = Counter(w for text in texts for w in bpe.pretokenize(text, "gpt2"))
    setup = time.perf_counter() - t
    symbols = bpe.count_words(texts, "gpt2", "byte")
    state = bpe.Trainer(symbols, bpe.alphabet_for(symbols, "byte"))
    cost = []
    for done in at:
        state.train(done - len(state.steps))
        ids, counts = [list(w) for w in state.words], state.counts
        t = time.perf_counter()
        for k in range(n):
            stats = get_stats(ids, counts)
            pair = max(stats, key=stats.get)
            ids = [merge(w, pair, 10_000 + k) for w in ids]
        cost.append((time.perf_counter() - t) / n)
    total = setup + sum((b - a) * (ca + cb) / 2 for a, b, ca, cb in zip(at, at[1:], cost, cost[1:]))
    how = ", ".join(f"{c * 1000:.0f} ms" for c in cost)
    return total, f"per merge after {', '.join(map(str, at))} merges: {how}"


def peak_memory(texts: list[str]) -> int:
    tracemalloc.start()
    ours(texts)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [1] if args.quick else [1, 5]
    print(f"{MERGES} merges, GPT-2 pre-tokenization, byte level; {os.cpu_count()} CPUs; "
          f"tokenizers uses {os.environ.get('RAYON_NUM_THREADS', 'all')} threads")
    for mb in sizes:
        texts = english(mb * 1_000_000)
        size = sum(len(t.encode()) + 2 for t in texts)
        # best of 3, interleaved, so a busy moment on a shared machine hurts no one trainer alone
        runs = [(ours(texts), rust(texts), ours(texts, trace=True)) for _ in range(3)]
        (ours_s, ours_m), (rust_s, rust_m) = min(r[0] for r in runs), min(r[1] for r in runs)
        trace_s = min(r[2][0] for r in runs)
        same = next((i for i, (a, b) in enumerate(zip(ours_m, rust_m)) if a != b), min(len(ours_m), len(rust_m)))
        rec_full, rec_how = recount(texts)
        print(f"\n{size / 1e6:.2f} MB of English ({len(texts):,} paragraphs)")
        print(f"  ours (trace off)      {ours_s:7.2f} s")
        print(f"  ours (trace on)       {trace_s:7.2f} s   trace costs {trace_s / ours_s:.2f}x")
        print(f"  tokenizers (Rust)     {rust_s:7.2f} s   ours / Rust = {ours_s / rust_s:.2f}x (target <= 2)")
        print(f"  recount every merge   {rec_full:7.1f} s   recount / ours = {rec_full / ours_s:.0f}x (target >= 50)")
        print(f"      (estimated: {rec_how})")
        print(f"  merges equal to tokenizers: first {same} of {min(len(ours_m), len(rust_m))}")
        if mb == sizes[-1]:
            print(f"  peak Python memory (tracemalloc, ours): {peak_memory(texts) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

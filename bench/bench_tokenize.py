"""Throughput of /count and /tokenize through the tool path vs the libraries called directly,
and tiktoken vs Hugging Face tokenizers on the same GPT-2 ranks. One run, ratios printed.

    python bench/bench_tokenize.py            # 1 MB of English
    python bench/bench_tokenize.py --mb 0.2   # quicker

The English text is the seed conversation and this repository's Markdown and Python, repeated
to the size asked (real prose and code, not random words).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


from timing import best, interleaved  # noqa: E402


def english(mb: float) -> str:
    from corpus import english as corpus_english

    return corpus_english(int(mb * 1_000_000))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    args = ap.parse_args()
    os.environ.setdefault("TUTOR_OFFLINE", "yes")
    import tiktoken

    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings

    text = english(args.mb)
    settings = Settings(max_input_chars=len(text) + 1000)
    tutor = Tutor(settings)
    session = tutor.session("bench")
    gpt2, r50k = tutor.tokenizer("gpt2"), tutor.tokenizer("r50k_base")
    enc = tiktoken.get_encoding("r50k_base")
    hf = gpt2.tok  # the tokenizers.Tokenizer itself
    mb = len(text.encode()) / 1e6
    print(f"text: {len(text):,} characters, {mb:.2f} MB; {len(enc.encode_ordinary(text)):,} GPT-2 tokens")

    def tool(command: str):
        reply = chat.final(command + text, session)
        assert not reply.error, reply.text[:300]
        return reply

    rows = []
    count_tt, direct_tt = interleaved(lambda: tool("/count r50k_base "), lambda: len(enc.encode_ordinary(text)))
    count_hf, direct_hf = interleaved(lambda: tool("/count gpt2 "), lambda: len(hf.encode(text).ids), repeat=3)
    tok_tt = best(lambda: tool("/tokenize r50k_base "), repeat=1)
    tok_hf = best(lambda: tool("/tokenize gpt2 "), repeat=1)
    numpy_tt = best(lambda: len(enc.encode_to_numpy(text, allowed_special=set(), disallowed_special=())))
    rows.append(("/count r50k_base vs tiktoken encode_ordinary", count_tt, direct_tt))
    rows.append(("  (tiktoken encode_to_numpy, what /count calls, vs encode_ordinary)", numpy_tt, direct_tt))
    rows.append(("/count gpt2 vs tokenizers Tokenizer.encode", count_hf, direct_hf))
    rows.append(("/tokenize r50k_base (spans, table, bytes) vs tiktoken", tok_tt, direct_tt))
    rows.append(("/tokenize gpt2 (spans, table, bytes) vs tokenizers", tok_hf, direct_hf))
    print(f"\n{'path':58} {'tool s':>8} {'direct s':>9} {'direct/tool':>12}")
    for name, t_tool, t_direct in rows:
        print(f"{name:58} {t_tool:8.3f} {t_direct:9.3f} {t_direct / t_tool:12.2f}")
    # the same GPT-2 ranks, two libraries (single thread each; batch for tokenizers' parallelism)
    lines = text.splitlines(keepends=True)
    batch_tt = best(lambda: enc.encode_ordinary_batch(lines, num_threads=os.cpu_count() or 1))
    batch_hf = best(lambda: hf.encode_batch(lines))
    print(f"\ntiktoken vs HF tokenizers on the same GPT-2 ranks ({mb:.2f} MB, identical ids: "
          f"{enc.encode_ordinary(text) == hf.encode(text).ids})")
    print(f"  one call:  tiktoken {mb / direct_tt:6.2f} MB/s   tokenizers {mb / direct_hf:6.2f} MB/s   "
          f"tiktoken is {direct_hf / direct_tt:.2f}x faster")
    print(f"  batch of {len(lines):,} lines ({os.cpu_count()} CPUs): tiktoken {mb / batch_tt:6.2f} MB/s   "
          f"tokenizers {mb / batch_hf:6.2f} MB/s   tiktoken is {batch_hf / batch_tt:.2f}x faster")


if __name__ == "__main__":
    main()

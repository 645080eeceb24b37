"""/count and /tokenize through the tool path (chat.final, what the notebook and terminal call)
vs tiktoken called directly on the same text, interleaved, best of N, in one process (P1, P2).

    python bench/bench_tokenize.py            # 1 MB of English, best of 7
    python bench/bench_tokenize.py --quick    # 200 KB, best of 5

The English text is Python's own docstrings (bench/corpus.py). gpt2's peer is tiktoken's
r50k_base: the same ranks, identical ids (checked here as well as in the tests).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import Report, arguments  # noqa: E402
from timing import interleaved  # noqa: E402


def main() -> None:
    args = arguments(__doc__).parse_args()
    os.environ.setdefault("TUTOR_OFFLINE", "yes")

    from corpus import english
    from tutor import chat
    from tutor.context import Tutor
    from tutor.settings import Settings

    size, repeat = (200_000, 5) if args.quick else (1_000_000, 7)
    text = english(size)
    tutor = Tutor(Settings(max_input_chars=len(text) + 1000))
    session = tutor.session("bench")
    rep = Report("tokenize", args.out)
    print(f"{len(text.encode()):,} bytes of English; best of {repeat}, interleaved")

    def tool(command: str):
        reply = chat.final(command + text, session)
        assert not reply.error, reply.text[:300]
        return reply

    for name in ("r50k_base", "cl100k_base", "o200k_base"):
        enc = tutor.tokenizer(name).encoding  # the very tiktoken Encoding, called directly
        tool(f"/count {name} ")  # warm: the first call loads the encoding
        t_tool, t_direct = interleaved(lambda: tool(f"/count {name} "), lambda: len(enc.encode_ordinary(text)),
                                       repeat)
        rep.figure("P1", f"/count {name} vs tiktoken", t_direct / t_tool, ">= 0.9",
                   detail=f"tool {t_tool * 1e3:.1f} ms, tiktoken {t_direct * 1e3:.1f} ms")
    r50k = tutor.tokenizer("r50k_base").encoding
    gpt2 = tutor.tokenizer("gpt2")
    same = gpt2.encode(text) == r50k.encode_ordinary(text) == gpt2.tok.encode(text).ids
    tool("/tokenize gpt2 ")
    for command, target in (("/count gpt2 ", ">= 0.9"), ("/tokenize gpt2 ", ">= 0.5")):
        t_tool, t_direct = interleaved(lambda: tool(command), lambda: len(r50k.encode_ordinary(text)), repeat)
        rep.figure("P2", f"{command.strip()} vs tiktoken r50k", t_direct / t_tool, target,
                   detail=f"tool {t_tool * 1e3:.1f} ms, tiktoken {t_direct * 1e3:.1f} ms, identical ids: {same}")
    t_hf, t_tt = interleaved(lambda: gpt2.tok.encode(text), lambda: r50k.encode_ordinary(text), repeat)
    rep.note("HF tokenizers vs tiktoken on the same GPT-2 ranks",
             f"tiktoken {t_hf / t_tt:.2f}x faster ({t_tt * 1e3:.1f} vs {t_hf * 1e3:.1f} ms): why gpt2 ids come "
             "from tiktoken")


if __name__ == "__main__":
    main()

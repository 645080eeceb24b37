"""The benchmarks' English corpus: the same text the /bpe tool offers as `--corpus python-docs`
(Python's standard-library docstrings, deterministic, present wherever Python is), so no
benchmark needs a download. `english(1_000_000)` gives exactly 1 MB of UTF-8."""

import importlib.util
import sys
from pathlib import Path

_PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "bpe.py"


def english(n_bytes: int) -> str:
    spec = importlib.util.spec_from_file_location("bench_corpus_bpe", _PLUGIN)
    bpe = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    if not hasattr(bpe, "python_docs_text"):
        spec.loader.exec_module(bpe)
    return bpe.python_docs_text(n_bytes, packages=n_bytes > 2_000_000)

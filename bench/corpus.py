"""The benchmarks' English corpus: the same text the /bpe tool offers as `--corpus python-docs`
(Python's standard-library docstrings, deterministic, present wherever Python is), so no
benchmark needs a download. `english(1_000_000)` gives exactly 1 MB of UTF-8."""


def english(n_bytes: int) -> str:
    from tutor.builtin import bpe

    return bpe.python_docs_text(n_bytes, packages=n_bytes > 2_000_000)

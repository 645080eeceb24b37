"""A deterministic English corpus from this machine: the docstrings of Python's standard library.

Real prose written by many authors, present wherever Python is, so benchmarks and tests need no
download. `english(1_000_000)` gives the first ~1 MB (whole docstrings, cut at a paragraph).
"""

import ast
import sysconfig
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def _docstrings() -> tuple[str, ...]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    out.append(doc)
    return tuple(out)


def english(n_bytes: int) -> str:
    """At least n_bytes of UTF-8 English (repeating the library's docstrings if it runs out)."""
    parts, size = [], 0
    while size < n_bytes:
        for doc in _docstrings():
            parts.append(doc)
            size += len(doc.encode()) + 2
            if size >= n_bytes:
                break
    return "\n\n".join(parts)


if __name__ == "__main__":
    text = english(5_000_000)
    print(f"{len(_docstrings())} docstrings, {sum(len(d) for d in _docstrings()):,} characters available")

"""tutor: a hands-on tutor for how large language models work.

What a plugin needs is importable from here: `hookimpl`, the reply and schema types, and errors.
"""

from .hookspecs import hookimpl
from .tokenizers import Tokenizer, TokenizerSpec
from .tools import Arg, File, Reply, Span, Table, Text, Tool, ToolError

__all__ = ["Tutor", "Arg", "File", "Reply", "Span", "Table", "Text", "Tokenizer", "TokenizerSpec", "Tool", "ToolError",
           "hookimpl"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """`from tutor import Tutor` (the notebook API) loads the core only when asked for, so a
    plugin importing `hookimpl` from here stays light."""
    if name == "Tutor":
        from .notebook import Tutor
        return Tutor
    raise AttributeError(f"module 'tutor' has no attribute {name!r}")

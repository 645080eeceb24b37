"""tutor: a hands-on tutor for how large language models work.

What a plugin needs is importable from here: `hookimpl`, the reply and schema types, and errors.
"""

from .hookspecs import hookimpl
from .tokenizers import Tokenizer, TokenizerSpec
from .tools import Arg, File, Reply, Span, Table, Text, Tool, ToolError

__all__ = ["Arg", "File", "Reply", "Span", "Table", "Text", "Tokenizer", "TokenizerSpec", "Tool", "ToolError", "hookimpl"]
__version__ = "0.1.0"

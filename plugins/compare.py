"""/compare: one text through several tokenizers, counts side by side and the splits aligned."""

from typing import Annotated

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.tokenizers import clean_text, pieces

DEFAULT = ("gpt2", "cl100k_base", "o200k_base", "bert-base-uncased", "whisper")  # smollm2: its first load takes ~1 min
ALIGN_CHARS = 240  # the aligned view covers the start of a long text
WIDTH = 60  # characters per aligned block


def compare(ctx, text: Text = "", *,
            tokenizers: Annotated[list[str] | None, Arg("comma-separated tokenizer names; default: "
                                                        + ", ".join(DEFAULT))] = None) -> Reply:
    """Run TEXT through several tokenizers: counts, characters per token, and where each one splits.

    In the aligned view each line is one tokenizer; `|` marks where a token starts, `¦` a token
    that starts inside a character's UTF-8 bytes. Spaces show as ␣. Choose tokenizers with
    --tokenizers gpt2,bert-base-uncased (before the text).
    """
    if not text:
        raise ToolError("Give a text to compare, e.g. `/compare The cat sat on the mat.` or "
                        "`/compare --tokenizers gpt2,bert-base-uncased unhappiness`.")
    text, notes = clean_text(text, ctx.settings.max_input_chars)
    names = [n.strip() for n in (tokenizers or DEFAULT) if n.strip()]
    if len(names) > 12:
        raise ToolError(f"Compare at most 12 tokenizers at once (you gave {len(names)}).")
    rows, data, starts, failed = [], {}, {}, []
    for name in dict.fromkeys(names):
        try:
            tok = ctx.tokenizer(name)
        except ToolError as e:
            if tokenizers:  # a name the learner typed: say what was wrong with it
                raise
            failed.append(f"{name}: {e}")
            continue
        ids = tok.encode(text)
        parts = pieces(tok, text, ids)
        data[tok.name] = {"count": len(ids), "ids": ids, "tokens": [p.name for p in parts]}
        starts[tok.name] = _starts(parts, text)
        rows.append([tok.name, tok.kind, f"{tok.vocab_size:,}", f"{len(ids):,}",
                     f"{len(text) / max(len(ids), 1):.2f}", f"{len(text.encode('utf-8')) / max(len(ids), 1):.2f}"])
    if not rows:
        raise ToolError("No tokenizer could be loaded: " + "; ".join(failed))
    lines = [f"**{len(text):,} characters** through {len(rows)} tokenizers."] + notes
    lines.append("```\n" + aligned(text[:ALIGN_CHARS], starts) + "\n```")
    if len(text) > ALIGN_CHARS:
        lines.append(f"(The aligned view shows the first {ALIGN_CHARS} characters.)")
    lines += [f"Could not load {f}" for f in failed]
    fewest = min(data, key=lambda n: data[n]["count"])
    return Reply(text="\n\n".join(lines),
                 table=Table(["tokenizer", "kind", "vocabulary", "tokens", "chars/token", "bytes/token"], rows),
                 data={"characters": len(text), "counts": {n: d["count"] for n, d in data.items()},
                       "tokenizers": data, "starts": starts, "fewest": fewest})


def _starts(parts, text: str) -> dict[int, str]:
    """Character offset -> '|' where a token starts there, '¦' where it starts inside that character."""
    out: dict[int, str] = {}
    byte_to_char, pos = {}, 0
    for i, ch in enumerate(text):
        for k in range(len(ch.encode("utf-8"))):
            byte_to_char[pos + k] = (i, k > 0)
        pos += len(ch.encode("utf-8"))
    pos = 0  # byte offset, for byte-level pieces that cut a character (they have no char offset)
    for p in parts:
        if p.start is not None:
            out.setdefault(p.start, "|")
        elif p.partial:
            char, inside = byte_to_char.get(pos, (len(text), False))
            out.setdefault(char, "¦" if inside else "|")
        pos += len(p.data)
    return out


def aligned(text: str, starts: dict[str, dict[int, str]]) -> str:
    """Each tokenizer's splits under the text, column for column (2 columns per character)."""
    width = max(len(n) for n in starts) + 1
    shown = "".join("␣" if c == " " else "↵" if c == "\n" else "⇥" if c == "\t" else c for c in text)
    blocks = []
    for lo in range(0, len(text), WIDTH):
        chunk = range(lo, min(lo + WIDTH, len(text)))
        block = []
        for name, marks in starts.items():
            block.append(name.ljust(width) + "".join(marks.get(i, " ") + shown[i] for i in chunk))
        blocks.append("\n".join(block))
    return "\n\n".join(blocks)


@hookimpl
def register_tools(register):
    register(compare, example="/compare --tokenizers gpt2,bert-base-uncased,o200k_base Tokenization is unhappily subtle.",
             phrases=['compare', 'side by side', 'differently', 'difference between'])

"""/decode: token ids back to text, each id with its token and bytes."""

import re
from typing import Annotated

from tutor import Arg, Reply, Table, ToolError, hookimpl
from tutor.tokenizers import visible

MAX_IDS = 5000


def decode(ctx, tokenizer: Annotated[str, Arg("tokenizer name (see /tokenizers)")],
           ids: Annotated[list[str], Arg("token ids, separated by spaces or commas")]) -> Reply:
    """Turn token IDS back into text with TOKENIZER, showing each id's token and bytes.

    Ids that stop in the middle of a character's UTF-8 bytes decode to � (U+FFFD); the table
    shows the bytes themselves. Paste a list like [15496, 995] straight from /tokenize's data.
    """
    numbers = _ids(ids)
    tok = ctx.tokenizer(tokenizer)
    bad = [i for i in numbers if not 0 <= i < tok.vocab_size]
    if bad:
        raise ToolError(f"{_list(bad)} {'is' if len(bad) == 1 else 'are'} not in {tok.name}'s vocabulary: its ids "
                        f"run from 0 to {tok.vocab_size - 1:,}. Check the numbers (and the tokenizer name).")
    unused = [i for i in numbers if not _known(tok, i)]
    if unused:
        raise ToolError(f"{_list(unused)} {'is an id' if len(unused) == 1 else 'are ids'} that {tok.name} leaves "
                        "unused (a gap between its ordinary and special tokens), so there is nothing to decode.")
    text = tok.decode(numbers)
    rows = [[i, visible(tok.token_name(i)), tok.token_bytes(i).hex(" "), "special" if tok.is_special(i) else ""]
            for i in numbers[:300]]
    lines = [f"{len(numbers):,} id{'s' * (len(numbers) != 1)} with `{tok.name}` decode to:",
             "```\n" + text.replace("```", "`\u200b``") + "\n```"]
    if "\ufffd" in text and tok.byte_level:
        joined = b"".join(tok.token_bytes(i) for i in numbers)
        if b"\xef\xbf\xbd" not in joined:
            lines.append("Some ids hold only part of a character's UTF-8 bytes, so those bytes decode to � "
                         "(U+FFFD); add the ids of the rest of the character to see it.")
    return Reply(text="\n\n".join(lines), table=Table(["id", "token", "bytes (hex)", ""], rows),
                 data={"tokenizer": tok.name, "ids": numbers, "text": text,
                       "tokens": [tok.token_name(i) for i in numbers]})


def _ids(words: list[str]) -> list[int]:
    """['[15496,', '995]'] -> [15496, 995]; anything else that is not a whole number is named."""
    items = [w for w in re.split(r"[\s,\[\]()]+", " ".join(words)) if w]
    if not items:
        raise ToolError("Give token ids to decode, e.g. `/decode gpt2 15496 995`.")
    if len(items) > MAX_IDS:
        raise ToolError(f"That is {len(items):,} ids; /decode takes at most {MAX_IDS:,} at once.")
    wrong = [w for w in items if not re.fullmatch(r"-?\d+", w)]
    if wrong:
        raise ToolError(f"Token ids are whole numbers; {_list(wrong)} {'is' if len(wrong) == 1 else 'are'} not. "
                        "Example: `/decode gpt2 15496 995`.")
    return [int(w) for w in items]


def _known(tok, i: int) -> bool:
    try:
        tok.token_bytes(i)
        return True
    except Exception:  # a gap in the vocabulary (tiktoken's cl100k has unused ids)
        return False


def _list(values) -> str:
    shown = ", ".join(str(v) for v in list(values)[:10])
    return shown + (f" and {len(values) - 10} more" if len(values) > 10 else "")


@hookimpl
def register_tools(register):
    register(decode, example="/decode gpt2 15496 995",
             phrases=['decode', 'ids to text', 'into|to text', 'what text'])

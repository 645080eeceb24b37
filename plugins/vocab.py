"""/vocab: look a token up by id or by text, and see how BPE built it from merges."""

from typing import Annotated

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.tools import valid_unicode
from tutor.tokenizers import Tokenizer, text_to_id, visible

MAX_DEPTH = 12


def vocab(ctx, tokenizer: Annotated[str, Arg("tokenizer name (see /tokenizers)")],
          token: Text = "", *,
          prefixes: Annotated[int | None, Arg("check every token of this many characters: is its prefix one "
                                              "character shorter also a token?", min=2, max=16)] = None) -> Reply:
    """Look up TOKEN (an id, a token name such as Ġthe or ##ing, or a text such as " the") in TOKENIZER.

    For BPE tokenizers it shows the merges that build the token, each with its rank (lower ranks
    merge first). `--prefixes 3` tests a claim against the real vocabulary: "every 3-character
    token has its 2-character prefix in the vocabulary". Quote a token with spaces: /vocab gpt2 " the".
    """
    tok = ctx.tokenizer(tokenizer)
    if prefixes is not None:
        return _prefix_check(tok, prefixes)
    if not token:
        raise ToolError(f"Give a token or an id to look up, e.g. `/vocab {tok.name} 1169` or "
                        f'`/vocab {tok.name} " the"`, or check a claim with `/vocab --prefixes 3 {tok.name}`.')
    id = _find(tok, valid_unicode(token, "The token"))
    name, data = tok.token_name(id), tok.token_bytes(id)
    tree = _tree(tok, id)
    lines = [f"`{tok.name}` id **{id}** is the token `{visible(name)}` — bytes {data.hex(' ')}"
             + (f", text {data.decode('utf-8')!r}" if _utf8(data) else ", not a whole UTF-8 character")
             + (" (a special token)" if tok.is_special(id) else "") + "."]
    if tree:
        order = "a token's rank is its merge order" if "tiktoken" in tok.kind else "rank = place in the merge list"
        lines.append(f"Built by merges ({order}; lower ranks merge first):\n```\n"
                     + "\n".join("  " * d + f"{_show(tok, m['id'])} = {_show(tok, m['left'])} + "
                                 f"{_show(tok, m['right'])}   rank {m['rank']:,}" for d, m in tree) + "\n```")
    elif tok.merge(id) is None and not tok.is_special(id) and len(data) == 1 and tok.byte_level:
        lines.append("This is one of the 256 base byte tokens: BPE starts from these and merges upwards.")
    elif "BPE" not in tok.kind:
        lines.append(f"{tok.kind} keeps no merges: its vocabulary is a list of pieces, chosen by "
                     + ("likelihood (WordPiece)." if "WordPiece" in tok.kind else "its training algorithm."))
    prefix = _prefix_of(tok, id)
    if prefix is not None:
        lines.append(f"Its prefix one character shorter {'is' if prefix[1] is not None else 'is not'} a token"
                     + (f" (id {prefix[1]})." if prefix[1] is not None else "."))
    return Reply(text="\n\n".join(lines),
                 data={"tokenizer": tok.name, "id": id, "token": name, "bytes": data.hex(),
                       "text": data.decode("utf-8") if _utf8(data) else None, "special": tok.is_special(id),
                       "merge": tree[0][1] if tree else None, "merges": [m for _, m in tree],
                       "prefix_id": prefix[1] if prefix else None},
                 buttons=[f"/vocab --prefixes 3 {tok.name}"])


def _find(tok: Tokenizer, token: str) -> int:
    word = token.strip()
    if word.lstrip("-").isdigit() and token == word:
        id = int(word)
        if not 0 <= id < tok.vocab_size:
            raise ToolError(f"{id} is not in {tok.name}'s vocabulary: its ids run from 0 to {tok.vocab_size - 1:,}.")
        try:
            tok.token_bytes(id)
        except Exception:
            raise ToolError(f"{id} is an id {tok.name} leaves unused; nothing is stored there.") from None
        return id
    for candidate in (tok.token_id(token), text_to_id(tok, token)):
        if candidate is not None:
            return candidate
    ids = tok.encode(token)
    pieces = " + ".join(f"{visible(tok.token_name(i))!s} ({i})" for i in ids[:12])
    raise ToolError(f"{token!r} is not a single token in {tok.name}: it is {len(ids)} tokens, {pieces}. "
                    "Look one of those up, or give an id.")


def _tree(tok: Tokenizer, id: int) -> list[tuple[int, dict]]:
    """(depth, merge) for the merge that builds `id`, then those that build its two parts."""
    out: list[tuple[int, dict]] = []

    def walk(i: int, depth: int) -> None:
        m = tok.merge(i)
        if m is None or depth > MAX_DEPTH:
            return
        out.append((depth, {"id": i, "left": m.left, "right": m.right, "rank": m.rank}))
        walk(m.left, depth + 1)
        walk(m.right, depth + 1)

    walk(id, 0)
    return out


def _show(tok: Tokenizer, id: int) -> str:
    return f"{visible(tok.token_name(id))!r}({id})"


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _piece(tok: Tokenizer, id: int) -> str | None:
    """The characters a token stands for, without WordPiece's ## or SentencePiece's ▁; None when
    it is special or not whole UTF-8 characters."""
    if tok.is_special(id):
        return None
    if not tok.byte_level:
        name = tok.token_name(id)
        return name[2:] if name.startswith("##") else name.lstrip("▁")
    data = tok.token_bytes(id)
    return data.decode("utf-8") if _utf8(data) else None


def _prefix_id(tok: Tokenizer, id: int) -> int | None:
    """The id of the token one character shorter, of the same kind (##in for ##ing, 'th' for 'the')."""
    if tok.byte_level:
        return text_to_id(tok, tok.token_bytes(id).decode("utf-8")[:-1])
    return tok.token_id(tok.token_name(id)[:-1])


def _prefix_of(tok: Tokenizer, id: int) -> tuple[str, int | None] | None:
    piece = _piece(tok, id)
    if piece is None or len(piece) < 2:
        return None
    return piece[:-1], _prefix_id(tok, id)


def _prefix_check(tok: Tokenizer, length: int) -> Reply:
    """Does every token of `length` characters have its (length-1)-character prefix in the vocab,
    and is it built from that prefix by its last merge?"""
    total, with_prefix, built, missing = 0, 0, 0, []
    for id in range(tok.vocab_size):
        try:
            piece = _piece(tok, id)
        except Exception:
            continue  # an unused id
        if piece is None or len(piece) != length:
            continue
        total += 1
        pid = _prefix_id(tok, id)
        if pid is None:
            missing.append(tok.token_name(id) if not tok.byte_level else piece)
            continue
        with_prefix += 1
        m = tok.merge(id)
        built += m is not None and m.left == pid
    if not total:
        raise ToolError(f"{tok.name} has no token of exactly {length} characters.")
    lines = [f"`{tok.name}` has **{total:,}** tokens of exactly {length} characters (special tokens left out). "
             f"**{with_prefix:,}** ({with_prefix / total:.1%}) have their {length - 1}-character prefix in the "
             f"vocabulary; {total - with_prefix:,} do not."]
    if "BPE" in tok.kind:
        lines.append(f"{built:,} ({built / total:.1%}) are built by a last merge of exactly that prefix + one "
                     "more piece; the rest merge differently (e.g. one character + a longer suffix).")
    if missing:
        lines.append("Counter-examples: " + ", ".join(f"`{visible(t)}`" for t in missing[:12]))
    return Reply(text="\n\n".join(lines),
                 table=Table(["tokens", "prefix in vocab", "built from prefix", "no prefix"],
                             [[total, with_prefix, built if "BPE" in tok.kind else "", total - with_prefix]]),
                 data={"tokenizer": tok.name, "length": length, "tokens": total, "with_prefix": with_prefix,
                       "built_from_prefix": built, "without_prefix": missing[:50],
                       "without_prefix_count": len(missing)})


@hookimpl
def register_tools(register):
    register(vocab, example='/vocab gpt2 " the"',
             phrases=['vocabulary', 'vocab', 'look up', 'merged to make', 'which tokens were merged', 'parents of', 'a token in'])

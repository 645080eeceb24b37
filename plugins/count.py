"""/count: how many tokens a text costs in one tokenizer or in each, and how much of each model
family's context window that fills."""

from typing import Annotated

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl
from tutor.tokenizers import clean_text, sync_saved


def count(ctx, tokenizer: Annotated[str | None, Arg("tokenizer name; all of them when left out",
                                                    choices="tokenizers")] = None,
          text: Text = "", *,
          tokenizers: Annotated[list[str] | None, Arg("comma-separated tokenizer names or hub ids "
                                                      "(instead of TOKENIZER)")] = None) -> Reply:
    """Count the tokens of TEXT, in one tokenizer or in each of them.

    Shows the number of tokens, the characters per token, and how much of the model family's
    context window the text fills. Try the same sentence in English and in another language.
    """
    if not text:
        raise ToolError("Give a text to count, e.g. `/count o200k_base The cat sat on the mat`.")
    text, notes = clean_text(text, ctx.settings.max_input_chars)
    registry = ctx.tutor.registry
    sync_saved(ctx.tutor)
    if tokenizer or tokenizers:
        names = [tokenizer] if tokenizer else [n.strip() for n in tokenizers if n.strip()]
    else:
        names = [s.name for s in registry.tokenizers.values() if s.counts_by_default]
    counts, rows, windows, failed = {}, [], {}, []
    for name in names:
        try:
            tok = ctx.tokenizer(name)
            n = tok.count(text)
        except ToolError:
            if tokenizer or tokenizers:  # a name the learner typed: say what was wrong with it
                raise
            failed.append(f"{name}: could not be loaded")
            continue
        except Exception as e:  # one unavailable tokenizer must not hide the others
            failed.append(f"{name}: {type(e).__name__}: {e}")
            continue
        counts[tok.name] = n
        spec = registry.lookup("tokenizers", tok.name)
        window = spec.context_window if spec else None
        used = f"{n / window:.2%} of {window:,}" if window else ""
        if window:
            windows[tok.name] = {"family": spec.family, "window": window, "fraction": n / window}
        rows.append([tok.name, spec.family if spec else "hub", f"{n:,}", f"{len(text) / max(n, 1):.2f}", used])
    if not counts:
        raise ToolError("No tokenizer could be loaded: " + "; ".join(failed))
    if len(counts) == 1:
        (name, n), = counts.items()
        lines = [f"**{n:,} token{'' if n == 1 else 's'}** with `{name}` for {len(text):,} characters "
                 f"({len(text) / max(n, 1):.2f} characters per token)."]
    else:
        lines = [f"**{len(text):,} characters** ({len(text.encode('utf-8')):,} bytes)."]
    for name, w in windows.items() if len(counts) == 1 else ():  # with several, the table says it
        over = " — too long: the model cannot see it all at once" if w["fraction"] > 1 else ""
        lines.append(f"{w['family']} (`{name}`): {counts[name]:,} of its {w['window']:,}-token context "
                     f"window ({w['fraction']:.2%}){over}.")
    lines += notes + [f"Could not load {f}" for f in failed]
    if not (tokenizer or tokenizers):
        extra = [s.name for s in registry.tokenizers.values() if not s.counts_by_default]
        if extra:
            lines.append(f"Not counted unless named: {', '.join(extra)} (e.g. `/count --tokenizers "
                         f"{','.join(extra[:2])} TEXT`).")
    return Reply(text="\n\n".join(lines),
                 table=Table(["tokenizer", "family", "tokens", "chars/token", "context window used"], rows),
                 data={"counts": counts, "characters": len(text), "context": windows})


@hookimpl
def register_tools(register):
    register(count, example="/count o200k_base The cat sat on the mat",
             phrases=['count tokens', 'count the tokens', 'how many tokens', 'number of tokens', 'token count'])

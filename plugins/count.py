"""/count: how many tokens a text costs in one tokenizer, or in every tokenizer."""

from typing import Annotated

from tutor import Arg, Reply, Table, Text, ToolError, hookimpl


def count(ctx, tokenizer: Annotated[str | None, Arg("tokenizer name; all of them when left out",
                                                    choices="tokenizers")] = None,
          text: Text = "") -> Reply:
    """Count the tokens of TEXT, in one tokenizer or in each of them.

    Shows the number of tokens, the characters per token, and how much of the model family's
    context window the text fills. Try the same sentence in English and in another language.
    """
    if not text:
        raise ToolError("Give a text to count, e.g. `/count o200k_base The cat sat on the mat`.")
    registry = ctx.tutor.registry
    if tokenizer:
        specs = [registry.lookup("tokenizers", tokenizer)]
    else:
        specs = [s for s in registry.tokenizers.values() if s.counts_by_default]
    counts, rows, failed = {}, [], []
    for spec in specs:
        try:
            n = ctx.tokenizer(spec.name).count(text)
        except ToolError:
            raise
        except Exception as e:  # one unavailable tokenizer must not hide the others
            failed.append(f"{spec.name}: {e}")
            continue
        counts[spec.name] = n
        window = f"{n / spec.context_window:.2%} of {spec.context_window:,}" if spec.context_window else ""
        rows.append([spec.name, spec.family, f"{n:,}", f"{len(text) / max(n, 1):.2f}", window])
    if not counts:
        raise ToolError("No tokenizer could be loaded: " + "; ".join(failed))
    lines = [f"**{len(text):,} characters.**"]
    if len(counts) == 1:
        (name, n), = counts.items()
        lines = [f"**{n:,} token{'' if n == 1 else 's'}** with `{name}` for {len(text):,} characters "
                 f"({len(text) / max(n, 1):.2f} characters per token)."]
    lines += [f"Could not load {f}" for f in failed]
    return Reply(text="\n\n".join(lines),
                 table=Table(["tokenizer", "family", "tokens", "chars/token", "context window used"], rows),
                 data={"counts": counts, "characters": len(text)})


@hookimpl
def register_tools(register):
    register(count, example="/count o200k_base The cat sat on the mat")

"""/tokenizers: every tokenizer the tutor can use, where it comes from, and how to add one."""

from tutor import Reply, Table, hookimpl
from tutor.tokenizers import saved_dir, sync_saved


def tokenizers(ctx) -> Reply:
    """List the tokenizers: offline ones, ones you trained, and how to use a hub tokenizer."""
    sync_saved(ctx.tutor)
    registry = ctx.tutor.registry
    rows = [[s.name, ", ".join(s.aliases), s.family, s.description, s.source,
             "yes" if f"tokenizer:{s.name}" in ctx.tutor.cache else "no"]
            for s in registry.tokenizers.values()]
    text = ("Use any name with /tokenize, /count, /compare, /decode, /vocab and /pitfalls. Online, a Hugging Face "
            "hub id works too (`/tokenize t5-small Hello`). Tokenizers trained here are saved in "
            f"`{saved_dir(ctx.settings)}`.")
    return Reply(text=text, table=Table(["name", "aliases", "family", "what", "source", "loaded"], rows),
                 data={"tokenizers": [s.name for s in registry.tokenizers.values()]})


@hookimpl
def register_tools(register):
    register(tokenizers, example="/tokenizers")

"""/tokenizers: every tokenizer the tutor can use, where it comes from, and how to add one."""

from tutor import Reply, Table, hookimpl
from tutor.tokenizers import saved_dir, sync_saved


def tokenizers(ctx) -> Reply:
    """List the tokenizers with their vocabulary sizes and special tokens: offline ones, ones you trained."""
    sync_saved(ctx.tutor)
    registry = ctx.tutor.registry
    facts, rows = [], []
    for s in registry.tokenizers.values():
        fact = {"name": s.name, "family": s.family, "vocab_size": None, "specials": None, "kind": None}
        try:  # loading every tokenizer costs seconds once (then the cache has it) and gives real sizes
            tok = ctx.tokenizer(s.name)
            fact.update(vocab_size=tok.vocab_size, specials=dict(tok.specials), kind=tok.kind)
            if tok.byte_level:  # every other id of a byte-level BPE is one of the 256 bytes or one merge
                fact.update(bytes=256, merges=tok.vocab_size - len(tok.specials) - 256)
        except Exception as e:  # noqa: BLE001 - one broken tokenizer must not hide the others
            fact["error"] = f"{type(e).__name__}: {e}"
        facts.append(fact)
        shown = (", ".join(fact["specials"])[:80] if fact["specials"] else "none") if fact["specials"] is not None \
            else fact.get("error", "")
        rows.append([s.name, ", ".join(s.aliases), s.family, f"{fact['vocab_size']:,}" if fact["vocab_size"] else "?",
                     shown, s.description, s.source])
    text = ("Use any name with /tokenize, /count, /compare, /decode, /vocab and /pitfalls. Online, a Hugging Face "
            "hub id works too (`/tokenize t5-small Hello`). Tokenizers trained here are saved in "
            f"`{saved_dir(ctx.settings)}`.")
    text += (" The vocabulary size counts every id, special tokens included (tiktoken's `n_vocab`, "
             "`get_vocab_size(with_added_tokens=True)`).")
    return Reply(text=text, table=Table(["name", "aliases", "family", "vocabulary", "special tokens", "what",
                                         "source"], rows),
                 data={"tokenizers": [s.name for s in registry.tokenizers.values()],
                       "details": {f["name"]: f for f in facts}})


@hookimpl
def register_tools(register):
    register(tokenizers, example="/tokenizers",
             phrases=['list the tokenizers', 'list tokenizers', 'show the tokenizers', 'available tokenizers', 'all tokenizers'])

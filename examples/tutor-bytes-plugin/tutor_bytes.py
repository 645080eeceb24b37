"""An example tutor plugin shipped as its own package: /bytes shows what byte-level BPE starts from."""

from tutor import Reply, Table, Text, ToolError, hookimpl


def bytes_(ctx, text: Text = "") -> Reply:
    """Show the UTF-8 bytes of TEXT, character by character.

    Byte-level BPE (GPT-2, GPT-4o) starts from these 256 byte values, which is why one accented
    or Japanese character can cost more than one token.
    """
    if not text:
        raise ToolError("Give a text, e.g. `/bytes héllo`.")
    rows = [[repr(ch), " ".join(f"{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))] for ch in text]
    n = len(text.encode("utf-8", "surrogatepass"))
    return Reply(text=f"{len(text)} characters, {n} UTF-8 bytes.", table=Table(["character", "bytes (hex)"], rows),
                 data={"characters": len(text), "bytes": n})


@hookimpl
def register_tools(register):
    register(bytes_, name="bytes", example="/bytes héllo",
             phrases=["utf-8 bytes", "bytes of", "byte values"])  # so "show the bytes of 'héllo'" runs it

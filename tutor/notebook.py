"""The tutor in a notebook or a script: `Tutor().ask(message)` returns the turn's final Reply.

    from tutor import Tutor
    t = Tutor()
    r = t.ask("/tokenize gpt2 unhappiness")
    r.data["tokens"], r.text      # the facts and the prose; in Jupyter `r` renders as the page does

A notebook is one learner ("notebook" unless you name one), so step modes (`/bpe step`,
`/generate --step`) carry on from one cell to the next, as they do in the page.
"""

from __future__ import annotations

from . import chat
from .context import Tutor as _Tutor
from .tools import Reply


class Tutor(_Tutor):
    """The process-wide tutor (settings, plugins, model cache) with `ask` for one turn."""

    def ask(self, message: str, learner: str = "notebook") -> Reply:
        """One chat turn, as typed in the page; the final reply (a stream's last one).
        Never raises for a learner's mistake: the reply has error=True and says how to fix it."""
        return chat.final(message, self.session(learner))

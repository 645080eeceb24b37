"""/models: every model the tutor knows, where it comes from, and whether it is ready here.

A learner sees the shared models and their own private ones (another learner's fine-tune is not
listed, nor its upload's name), and never a path on the server: the room's machine is not theirs."""

import re
from typing import Annotated

from tutor import Arg, Reply, ToolError, hookimpl
from tutor.models import models_table

# An absolute path (POSIX or Windows) inside a text: shown as its last part only.
_PATH = re.compile(r"(?<![\w.:/])(?:/|[A-Za-z]:\\)(?:[^\s/\\()'\"`]+[/\\])*([^\s/\\()'\"`]+)[/\\]?")


def without_paths(value):
    """A row's texts with server paths cut to their last part: '/srv/tutor/models/m' -> 'm'."""
    if isinstance(value, str):
        return _PATH.sub(lambda m: m.group(1), value)
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    return value


def visible(ctx, rows: list[dict]) -> list[dict]:
    """Shared models, and private ones only for their owner."""
    reg, me = ctx.tutor.registry, ctx.session.learner_id
    out = []
    for r in rows:
        spec = reg.lookup("models", r["id"])
        owner = getattr(spec, "owner", None)
        if owner is None or owner == me:
            out.append(without_paths(r))
    return out


def models(ctx, model: Annotated[str | None, Arg("show only this model", choices="models")] = None) -> Reply:
    """List the models: architecture, parameters, source, licence, and whether each is ready.

    A model is *ready* when its files are on this machine, *loaded* when it is in memory (the
    device and memory it uses are shown), *needs pull* when its first use downloads or converts
    it (`tutor models pull ID` does that ahead of time), or *unavailable* (the reason is shown).
    """
    rows = visible(ctx, ctx.tutor.models_overview())
    if model:
        spec = ctx.tutor.registry.lookup("models", model)
        rows = [r for r in rows if spec and r["id"] == spec.id]
        if not rows:
            raise ToolError(f"No model {model!r} of yours or shared; type /models to see them all.")
    ready = sum(r["status"] in ("ready", "loaded") for r in rows)
    text = f"**{len(rows)} model{'s' * (len(rows) != 1)}, {ready} ready or loaded.** {ctx.tutor.memory_line()}"
    return Reply(text=text, table=models_table(rows), data={"models": rows})


@hookimpl
def register_tools(register):
    register(models, example="/models",
             phrases=['list the models', 'list models', 'show the models', 'available models', 'all models'])

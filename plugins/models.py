"""/models: every model the tutor knows, where it comes from, and whether it is ready here."""

from typing import Annotated

from tutor import Arg, Reply, ToolError, hookimpl
from tutor.models import models_table


def models(ctx, model: Annotated[str | None, Arg("show only this model", choices="models")] = None) -> Reply:
    """List the models: architecture, parameters, source, licence, and whether each is ready.

    A model is *ready* when its files are on this machine, *loaded* when it is in memory (the
    device and memory it uses are shown), *needs pull* when its first use downloads or converts
    it (`tutor models pull ID` does that ahead of time), or *unavailable* (the reason is shown).
    """
    rows = ctx.tutor.models_overview()
    if model:
        spec = ctx.tutor.registry.lookup("models", model)
        rows = [r for r in rows if spec and r["id"] == spec.id]
        if not rows:
            raise ToolError(f"No model {model!r}; type /models to see them all.")
    ready = sum(r["status"] in ("ready", "loaded") for r in rows)
    text = f"**{len(rows)} model{'s' * (len(rows) != 1)}, {ready} ready or loaded.** {ctx.tutor.memory_line()}"
    return Reply(text=text, table=models_table(rows), data={"models": rows})


@hookimpl
def register_tools(register):
    register(models, example="/models",
             phrases=['list the models', 'list models', 'show the models', 'available models', 'all models'])

"""The side panels: the lesson outline for one learner, the models, the plugins."""

from __future__ import annotations

import html

from ..context import Tutor
from ..lessons import outline_for
from ..plugins import Registry
from .render import sanitize_markdown


def plugins_markdown(reg: Registry) -> str:
    lines = ["| plugin | from | registers |", "|---|---|---|"]
    for p in reg.plugins:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.registered.items()) or ", ".join(p.hooks)
        lines.append(f"| {p.name} | {p.source} | {what} |")
    for f in reg.failures:
        lines.append(f"| ❌ {f.name} | {f.source} | failed: {html.escape(f.error)} |")
    return sanitize_markdown("\n".join(lines))


def models_markdown(reg: Registry) -> str:
    lines = ["| model | what it is | parameters |", "|---|---|---|"]
    for spec in reg.models.values():
        n = f"{spec.parameters / 1e6:,.0f} M" if getattr(spec, "parameters", None) else "?"
        lines.append(f"| `{spec.id}` | {spec.label} | {n} |")
    toks = ", ".join(f"`{n}`" for n in reg.names("tokenizers"))
    return sanitize_markdown("\n".join(lines) + (f"\n\nTokenizers: {toks}" if toks else ""))


def outline_panel(tutor: Tutor, learner: str | None) -> str:
    """The lesson outline and this learner's progress (tutor.lessons.outline_for), as safe markdown."""
    try:
        return sanitize_markdown(str(outline_for(tutor, learner)))
    except Exception as e:  # a broken lesson file must not break the page
        return f"⚠️ The lesson outline could not be built: {html.escape(str(e))}"

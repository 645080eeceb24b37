"""A Reply as one self-contained piece of HTML, the way a notebook shows it (`Reply._repr_html_`).

It shows what the page shows: the markdown text, coloured token spans with their ids on hover,
the table (scrolling sideways rather than breaking words), the figure as an inline PNG and the
commands the reply offers. The text goes through markdown and then nh3, so a tool's or lesson's
HTML cannot run script in a notebook either; everything else is built here from escaped values.
Duck-typed on purpose: this module imports nothing from tutor, so tools.py can use it.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

# The page's six token colours (light theme), inline because a notebook has no stylesheet of ours.
COLOURS = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")
_TOK = "color:#111;padding:1px 2px;margin:1px;border-radius:3px;font-family:monospace;background:"
_SPECIAL = "color:#111;padding:1px 2px;margin:1px;border-radius:3px;font-family:monospace;" \
           "background:#e5e7eb;border:1px dashed #6b7280"


def markdown_html(text: str) -> str:
    """Markdown -> HTML with tables and fenced code, cleaned by nh3 (script, handlers, js: links go)."""
    import markdown
    import nh3

    raw = markdown.markdown(text, extensions=["tables", "fenced_code"])
    tags = set(nh3.ALLOWED_TAGS) | {"span", "progress", "details", "summary", "table", "thead", "tbody",
                                    "tr", "th", "td", "pre", "code", "kbd", "mark", "small"}
    attrs = {"span": {"class", "title"}, "a": {"href", "title"}, "th": {"align"}, "td": {"align"},
             "code": {"class"}, "progress": {"value", "max"}}
    return nh3.clean(raw, tags=tags, attributes=attrs, url_schemes={"http", "https", "mailto"})


def spans_html(spans: list[Any]) -> str:
    out = []
    for s in spans:
        shown = html.escape(s.text).replace(" ", "␣").replace("\n", "↵<br>").replace("\t", "⇥")
        title = html.escape(s.title or (f"id {s.id}" if s.id is not None else ""), quote=True)
        style = _SPECIAL if s.special else _TOK + COLOURS[s.group % len(COLOURS)]
        out.append(f'<span style="{style}" title="{title}">{shown}</span>')
    return '<div style="line-height:2">' + "".join(out) + "</div>"


def table_html(table: Any) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in table.rows)
    return ('<div style="overflow-x:auto"><table style="white-space:nowrap">'
            f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>")


def figure_html(figure: Any, alt: str = "figure") -> str:
    if hasattr(figure, "html"):  # a tutor.figures.Heatmap: a table built from escaped values, nothing to draw
        return figure.html()
    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="max-width:100%">'


def reply_html(reply: Any) -> str:
    """The whole reply as HTML."""
    parts = []
    if reply.text:
        parts.append(("⚠️ " if reply.error else "") + markdown_html(reply.text))
    if reply.spans:
        parts.append(spans_html(reply.spans))
    if reply.table is not None:
        parts.append(table_html(reply.table))
    if reply.figure is not None:
        parts.append(figure_html(reply.figure))
    for f in reply.files:
        parts.append(f"<p>File: <code>{html.escape(str(f))}</code></p>")
    if reply.buttons:
        parts.append("<p>Try: " + " · ".join(f"<code>{html.escape(b)}</code>" for b in reply.buttons) + "</p>")
    return '<div class="tutor-reply">' + "\n".join(parts) + "</div>"

"""Reply -> chat messages, safe markdown, and chat history as the page or a client sends it.
Pure functions, unit-tested without a server."""

from __future__ import annotations

import html
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..figures import Heatmap
from ..tools import Reply, Span
from .safe_html import learner_html, tool_html

PALETTE_SIZE = 6  # colour groups for token spans; the colours live in CSS (light and dark)
FOLD_ROWS = 8  # a table longer than this under token spans starts folded
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}  # no .svg: it can carry script

# ---- safe output (safe_html.py: markdown-it renders, nh3 sanitises) ----------------------------

def sanitize_markdown(text: str) -> str:
    """Markdown from a tool or lesson -> safe HTML (allowlisted tags, no script, no javascript: links)."""
    return tool_html(text)


def escape_learner_text(text: str) -> str:
    """What a learner typed -> safe HTML: markdown works, `<script>` shows as the characters."""
    return learner_html(text)


# ---- replies -> chat messages ------------------------------------------------------------------

def spans_html(spans: list[Span]) -> str:
    """Coloured token spans (colours by CSS class, so both themes work); whitespace made visible."""
    out = []
    for s in spans:
        shown = html.escape(s.text).replace(" ", "␣").replace("\n", "↵<br>").replace("\t", "⇥")
        title = html.escape(s.title or (f"id {s.id}" if s.id is not None else ""), quote=True)
        kind = "tok-special" if s.special else f"tok-{s.group % PALETTE_SIZE}"
        out.append(f'<span class="tok {kind}" title="{title}">{shown}</span>')
    return '<div class="tokens">' + "".join(out) + "</div>"


def progress_html(progress: float) -> str:
    p = min(max(float(progress), 0.0), 1.0)
    return (f'<progress class="tutor-progress" value="{p:.3f}" max="1" aria-label="progress"></progress>'
            f" {p:.0%}")


def reply_markdown(reply: Reply, buttons_as_text: bool = True) -> str:
    """One Reply as markdown: text, token spans, table, progress bar, offered commands (as text
    for API clients; the page shows them as clickable options instead). Not yet safe to show:
    the page passes it through `sanitize_markdown`."""
    parts = []
    if reply.text:
        parts.append(("⚠️ " if reply.error else "") + reply.text)
    if reply.spans:
        parts.append(spans_html(reply.spans))
    if reply.table:
        table = reply.table.markdown()
        if reply.spans and len(reply.table.rows) > FOLD_ROWS:  # a long table under coloured text
            # (generate's steps) starts folded, so the coloured text stays in view
            table = (f"<details><summary>Table: {len(reply.table.rows)} rows (click to show)</summary>\n\n"
                     f"{table}\n\n</details>")
        parts.append(table)
    if reply.progress is not None and not reply.done:
        parts.append(progress_html(reply.progress))
    if reply.buttons and buttons_as_text:
        parts.append("Try: " + " · ".join(f"`{b}`" for b in reply.buttons))
    return "\n\n".join(parts) or "(no reply)"


def reply_messages(reply: Reply, figure_dir: Path) -> list[dict[str, Any]]:
    """One Reply -> assistant messages: the markdown, then a picture per figure or image file
    (a `figures.Heatmap` as its HTML table).

    Pictures are written (or copied) into `figure_dir`, the one folder the file route serves."""
    messages: list[dict[str, Any]] = [{"role": "assistant",
                                       "content": sanitize_markdown(reply_markdown(reply, buttons_as_text=False))}]
    if reply.buttons and reply.done:  # commands offered to the learner: one click runs them
        messages[0]["options"] = [{"value": b, "label": b} for b in reply.buttons]
    if isinstance(reply.figure, Heatmap):  # shown as HTML built from escaped values: nothing to draw
        messages.append({"role": "assistant", "content": reply.figure.html()})
    elif reply.figure is not None:
        figure_dir.mkdir(parents=True, exist_ok=True)
        path = figure_dir / f"{uuid.uuid4().hex}.png"
        reply.figure.savefig(path, dpi=110, bbox_inches="tight")
        messages.append({"role": "assistant", "content": {"path": str(path)}})
    for f in reply.files:
        f = Path(f)
        if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
            figure_dir.mkdir(parents=True, exist_ok=True)
            copy = figure_dir / f"{uuid.uuid4().hex}{f.suffix.lower()}"
            shutil.copyfile(f, copy)
            messages.append({"role": "assistant", "content": {"path": str(copy)}})
        else:  # other files (a saved model, a vocabulary) stay on the server; say where
            messages.append({"role": "assistant", "content": f"Saved on the server: `{f.name}`"})
    return messages


def message_text(content: Any) -> str:
    """History content from the page (content blocks) or from a client (plain strings)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        if content.get("type") in (None, "text"):
            return content.get("text") or content.get("value") or ""
        return ""
    if isinstance(content, (list, tuple)):
        return "".join(message_text(c) for c in content)
    return ""


def normalize_history(history: Any) -> list[dict[str, Any]]:
    """Chat history as the page or a client sends it -> [{"role", "content"}] with text content
    as a string and files as {"path": ...}. Accepts content blocks, plain strings and
    Gradio's message objects; drops anything without a role."""
    out = []
    for m in history or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if role not in ("user", "assistant"):
            continue
        blocks = content if isinstance(content, (list, tuple)) else [content]
        for b in blocks:
            path = _file_path(b)
            if path:
                out.append({"role": role, "content": {"path": path}})
            else:
                text = message_text(b)
                if text:
                    out.append({"role": role, "content": text})
    return out


def _file_path(block: Any) -> str | None:
    if isinstance(block, dict):
        f = block.get("file") if block.get("type") == "file" else block
        if isinstance(f, dict) and isinstance(f.get("path"), str):
            return f["path"]
    return getattr(getattr(block, "file", None), "path", None) if not isinstance(block, (str, dict)) else None

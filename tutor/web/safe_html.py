"""Markdown -> safe HTML for the page: a real markdown parser (markdown-it-py), then an allowlist
sanitiser (nh3, Rust's ammonia) over the HTML it produced.

Two doors, one rule (parse first, sanitise the result; never edit the markdown with regexes):
- `tool_html(markdown)`: what tools and lessons write. Their inline HTML (token spans, progress
  bars, tables) is parsed as HTML and then cut down to the allowlist.
- `learner_html(markdown)`: what a learner typed, or a tool echoed back from it. Raw HTML in it is
  never HTML: the parser shows `<form>` as the characters, then the same allowlist runs again.

Both drop every URL scheme but http, https and mailto, so `[x](javascript:...)` never becomes a link
(markdown-it refuses such links itself; nh3 would strip them if it did not).

    >>> tool_html('**hi** <span class="tok tok-1" onclick="x()">a</span>')
    '<p><strong>hi</strong> <span class="tok tok-1">a</span></p>'
    >>> learner_html("\\\\`<form action=//evil>` hi")
    '<p>`&lt;form action=//evil&gt;` hi</p>'
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

# HTML a tool or lesson may use; everything else is stripped (its text kept, for script and style
# dropped with the content).
ALLOWED_TAGS = {"span", "br", "progress", "b", "i", "em", "strong", "code", "pre", "sub", "sup", "kbd",
                "details", "summary", "p", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
                "td", "a", "img", "div", "small", "mark", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
                "blockquote", "s", "del"}
ALLOWED_ATTRS = {"span": {"class", "title"}, "progress": {"value", "max", "class", "aria-label"},
                 "a": {"href", "title"}, "img": {"src", "alt", "title"}, "div": {"class"},
                 "td": {"align", "style"}, "th": {"align", "style"}, "code": {"class"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
DROPPED_WITH_CONTENT = {"script", "style"}


@lru_cache(maxsize=2)
def _parser(raw_html: bool) -> MarkdownIt:
    # "breaks": a single newline is a line break, as the chat showed markdown before.
    return MarkdownIt("commonmark", {"html": raw_html, "breaks": True}).enable(["table", "strikethrough"])


def clean(html: str) -> str:
    """HTML cut down to the allowlist: no script, style, event handler, form, iframe or
    javascript:/data: URL survives; table cells keep only their text alignment."""
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS, url_schemes=URL_SCHEMES,
                     clean_content_tags=DROPPED_WITH_CONTENT, link_rel="noopener noreferrer",
                     filter_style_properties={"text-align"}).strip()


def tool_html(markdown: str) -> str:
    """Markdown written by a tool or a lesson (inline HTML allowed, then sanitised)."""
    return clean(_parser(True).render(markdown or ""))


def learner_html(markdown: str) -> str:
    """Markdown typed by a learner: raw HTML is shown as text, never parsed as HTML."""
    return clean(_parser(False).render(markdown or ""))

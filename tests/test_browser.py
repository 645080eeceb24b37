"""The page in a real browser: Playwright driving the distribution's Chromium (never a downloaded
one) against the app on 127.0.0.1. Screenshots go to test-artifacts/ (gitignored).

Setup once: apt-get update && apt-get install -y chromium ; run: python -m pytest -m browser
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tutor.context import Tutor
from tutor.settings import Settings
from tutor import web

from conftest import ASSETS
from web_server import running

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TUTOR_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "course_site"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def app_url(tutor, tmp_path_factory):
    t = Tutor(Settings(home=tmp_path_factory.mktemp("browserhome"), assets_dir=ASSETS, offline="yes"),
              registry=tutor.registry)
    with running(web.server_app(t)) as url:
        yield url


# Record every progress value the chat shows (bars come and go as replies stream).
PROGRESS_WATCH = """
() => {
  window.__progress = [];
  const seen = () => document.querySelectorAll('#chat progress').forEach(b => {
    const v = parseFloat(b.value);
    if (!window.__progress.includes(v)) window.__progress.push(v);
  });
  new MutationObserver(seen).observe(document.querySelector('#chat'), {subtree: true, childList: true, attributes: true});
}
"""


def _corpus() -> str:
    """A few hundred KB of varied made-up words: enough pairs for thousands of BPE merges."""
    import random
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "tre", "sun", "ber", "qua", "xi", "dor", "pel", "ing", "est", "un", "re"]
    return " ".join("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(60_000))


def settle(page, quiet_s: float = 6.0, timeout_s: float = 180.0) -> None:
    """Wait until the chat stops changing (a turn, with any tool it runs, has finished)."""
    import time
    deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
    while time.monotonic() < deadline:
        now = page.locator("#chat").inner_text()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.25)


def send(page, text: str, frame=None) -> None:
    """Type into the chat box and press Enter: keyboard only."""
    root = frame or page
    box = root.locator("#message textarea")
    box.click()
    box.fill(text)
    box.press("Enter")


def bot_text(root, contains: str, timeout: float = 30_000):
    try:
        root.locator("#chat").get_by_text(contains).last.wait_for(timeout=timeout)
    except Exception:
        chat = root.locator("#chat").inner_text()
        if hasattr(root, "screenshot"):
            root.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        raise AssertionError(f"{contains!r} not in the chat within {timeout / 1000:.0f} s; chat ends: {chat[-1500:]}")


def test_page_chat_spans_escape_upload_reload(browser, app_url, tutor):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/")
    page.locator("#message textarea").wait_for(timeout=30_000)

    # a learner's script comes back as text and never runs
    send(page, '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">')
    bot_text(page, "<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None

    # commands a reply offers are buttons: one click runs them
    page.locator("#chat button", has_text="/help").last.click(timeout=30_000)
    bot_text(page, "Count the tokens")

    # tokenize through the keyboard
    send(page, "/tokenize gpt2 unhappiness")
    page.locator("#chat .tok").first.wait_for(timeout=60_000)
    colours = page.locator("#chat .tok").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) > 1, colours  # neighbouring tokens differ in colour
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)

    # an uploaded .txt becomes the --file argument of the command
    sample = ARTIFACTS / "sample.txt"
    sample.write_text(_corpus(), encoding="utf-8")
    page.locator("#message textarea").fill("")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").click()
    chooser.value.set_files(str(sample))
    page.wait_for_function("document.querySelector('#message textarea').value.includes('--file')",
                           timeout=30_000)
    value = page.locator("#message textarea").input_value()
    assert "sample.txt" in value

    # long work shows a progress bar that moves: fine-tuning, or training a BPE tokenizer
    page.evaluate(PROGRESS_WATCH)
    box = page.locator("#message textarea")
    if "finetune" in tutor.registry.tools:
        box.fill(value + " --steps 30")
    elif "bpe" in tutor.registry.tools:
        box.fill(value.replace("/bpe", "/bpe train --merges 3000", 1) if value.startswith("/bpe")
                 else "/bpe train --merges 3000 " + value)
    else:
        pytest.skip("no tool that trains on an uploaded file is registered (/finetune, /bpe)")
    box.press("Enter")
    page.wait_for_function("window.__progress && window.__progress.length >= 2", timeout=300_000)
    seen = page.evaluate("window.__progress")
    assert seen == sorted(seen) and seen[-1] > seen[0], seen
    page.screenshot(path=str(ARTIFACTS / "progress.png"), full_page=True)
    # Stop ends the long work; the page answers the next message at once
    page.locator("#stop").click()
    send(page, "/help")
    bot_text(page, "Count the tokens", timeout=60_000)

    # reload: the conversation is still there
    page.reload()
    page.locator("#message textarea").wait_for(timeout=30_000)
    bot_text(page, "<script>window.pwned=1</script>")
    page.close()


def test_lesson_quiz(browser, app_url, tutor):
    cur = tutor.curriculum
    assert cur.lessons, "no lessons registered"
    first = cur.lessons[0]
    quiz_at = next((i for i, st in enumerate(first.steps) if st.quiz), None)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/")
    page.locator("#message textarea").wait_for(timeout=30_000)
    send(page, "start")
    page.locator("#outline").get_by_text("▶").first.wait_for(timeout=60_000)  # the outline marks it
    if quiz_at is None:
        pytest.skip(f"the first lesson ({first.id}) has no quiz")
    settle(page)
    quiz = first.steps[quiz_at].quiz
    for _ in range(quiz_at + 3):  # a "next" typed while a step still runs may be dropped: retry
        if quiz.question[:40] in page.locator("#chat").inner_text():
            break
        send(page, "next")
        settle(page)
    bot_text(page, quiz.question[:40], timeout=60_000)
    # answer by the choice's letter (typing a choice whose text is a number, e.g. "6", is read by
    # tutor/lessons/tutoring.py as a choice number: reported to the lead)
    send(page, chr(97 + quiz.choices.index(quiz.answer)) if quiz.choices else quiz.accepted[0])
    bot_text(page, "Right", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "lesson.png"), full_page=True)
    page.reload()
    page.locator("#outline").get_by_text("▶").first.wait_for(timeout=60_000)  # progress kept
    page.close()


def test_phone_viewport_and_palette_keyboard(browser, app_url):
    # a phone whose browser prefers dark: the page follows it
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                            color_scheme="dark")
    page.goto(app_url + "/")
    box = page.locator("#message textarea")
    box.wait_for(timeout=30_000)
    assert page.evaluate("!!document.querySelector('.dark')"), "dark theme not applied"
    assert box.is_visible() and box.bounding_box()["width"] > 150
    send(page, "/help")
    bot_text(page, "Count the tokens")
    page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    page.close()

    # the palette by keyboard: focus the /count section, open it, fill its text, run it
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app_url + "/")
    page.locator("#palette-count").wait_for(timeout=30_000)
    toggle = page.locator("#palette-count button").first
    toggle.focus()
    page.keyboard.press("Enter")
    text = page.locator("#palette-count-text textarea")
    text.wait_for(timeout=10_000)
    text.focus()
    page.keyboard.type("hello world")
    page.locator("#run-count").focus()
    page.keyboard.press("Enter")
    bot_text(page, "characters")
    page.screenshot(path=str(ARTIFACTS / "palette.png"), full_page=True)
    page.close()


def test_course_page_embeds_the_tutor(browser, tutor, tmp_path_factory):
    sys.path.insert(0, str(EXAMPLE))
    try:
        import app as course
    finally:
        sys.path.remove(str(EXAMPLE))
    t = Tutor(Settings(home=tmp_path_factory.mktemp("coursehome"), assets_dir=ASSETS, offline="yes"),
              registry=tutor.registry)
    with running(course.create_site(t)) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/")
        assert "log in" in page.content()
        page.goto(url + "/login?name=ada")
        assert page.locator("#learner").inner_text() == "ada"

        frame = page.frame_locator("#tutor-frame")
        page.locator("#tutor-frame").scroll_into_view_if_needed()
        frame.locator("#message textarea").wait_for(timeout=60_000)
        send(page, "/count o200k_base hello from the course", frame=frame)
        frame.locator("#chat").get_by_text("characters").last.wait_for(timeout=30_000)

        component = page.locator("#tutor-component #message textarea")
        component.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "course.png"), full_page=True)

        # the mounted route: the same learner (signed by the course login) sees the same history
        page.goto(url + "/tutor/")
        page.locator("#chat").get_by_text("hello from the course").last.wait_for(timeout=30_000)
        page.close()

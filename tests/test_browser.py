"""The page in a real browser: Playwright driving the distribution's Chromium (never a downloaded
one) against the app on 127.0.0.1. Screenshots go to test-artifacts/ (gitignored); with
TUTOR_DOCS_SCREENSHOTS=1 the ones the README and docs show are written to docs/ as well.

Setup once: apt-get update && apt-get install -y chromium ; run: python -m pytest -m browser
"""

from __future__ import annotations

import os
import shutil
import sys
import time
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
DOCS = Path(__file__).resolve().parent.parent / "docs"
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


def shot(page, name: str, docs: bool = False, full_page: bool = False) -> None:
    """A screenshot in test-artifacts/, and in docs/ when asked for (TUTOR_DOCS_SCREENSHOTS=1)."""
    path = ARTIFACTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the page's top; the chat keeps its own scroll
    page.screenshot(path=str(path), full_page=full_page)
    if docs and os.environ.get("TUTOR_DOCS_SCREENSHOTS"):
        shutil.copyfile(path, DOCS / f"{name}.png")


def open_page(browser, app_url, **options):
    """A page that has loaded. Its learner is the session the server's cookie names (set with the
    page itself), so two quick first messages already belong to one learner."""
    page = browser.new_page(**({"viewport": {"width": 1366, "height": 900}} | options))
    page.goto(app_url + "/")
    page.locator("#message textarea").wait_for(timeout=30_000)
    return page


def bots(page) -> list[str]:
    return page.locator('#chat [data-testid="bot"]').all_inner_texts()


def users(page) -> list[str]:
    return page.locator('#chat [data-testid="user"]').all_inner_texts()


def upload(page, path: Path) -> str:
    """Upload a file with the page's button; the message box gets the command it fills in."""
    page.locator("#message textarea").fill("")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").click()
    chooser.value.set_files(str(path))
    page.wait_for_function("document.querySelector('#message textarea').value.includes('--file')",
                           timeout=30_000)
    return page.locator("#message textarea").input_value()


def test_page_chat_spans_escape_upload_reload(browser, app_url, tutor):
    page = open_page(browser, app_url, viewport={"width": 1280, "height": 900})

    # a learner's script comes back as text and never runs
    send(page, '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">')
    bot_text(page, "<script>window.pwned=1</script>")
    assert page.evaluate("window.pwned") is None

    # commands a reply offers are buttons: one click runs them (the "not covered" answer offers
    # the outline; the first lesson's title only comes back when the click ran "lessons")
    page.locator("#chat").get_by_role("button", name="lessons", exact=True).last.click(timeout=30_000)
    bot_text(page, tutor.curriculum.lessons[0].title)

    # tokenize through the keyboard
    send(page, "/tokenize gpt2 unhappiness")
    page.locator("#chat .tok").first.wait_for(timeout=60_000)
    colours = page.locator("#chat .tok").evaluate_all(
        "els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert len(set(colours)) > 1, colours  # neighbouring tokens differ in colour
    shot(page, "chat", full_page=True)

    # an uploaded .txt becomes the --file argument of the command
    sample = ARTIFACTS / "sample.txt"
    sample.write_text(_corpus(), encoding="utf-8")
    value = upload(page, sample)
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
    shot(page, "progress")
    # reload while it trains: the conversation is there, the job re-attaches, says so, and goes on
    page.reload()
    page.locator("#message textarea").wait_for(timeout=30_000)
    bot_text(page, "Re-attached", timeout=60_000)
    page.evaluate(PROGRESS_WATCH)
    page.wait_for_function("window.__progress && window.__progress.length >= 2", timeout=300_000)
    after = page.evaluate("window.__progress")
    assert after[-1] > seen[-1], (seen, after)
    shot(page, "reload-finetune", docs=True)
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
    page = open_page(browser, app_url, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                     color_scheme="dark")
    box = page.locator("#message textarea")
    assert page.evaluate("!!document.querySelector('.dark')"), "dark theme not applied"
    assert box.is_visible() and box.bounding_box()["width"] > 150
    send(page, "/count o200k_base The cat sat on the mat")
    page.locator("#chat table").first.wait_for(timeout=60_000)
    # the chat uses the screen's height, and a table scrolls sideways instead of one letter per line
    assert page.locator("#chat").bounding_box()["height"] > 0.5 * 844
    cells = page.locator("#chat table").last.evaluate(
        "t => ({nowrap: getComputedStyle(t.querySelector('td')).whiteSpace,"
        " tallest: Math.max(...Array.from(t.querySelectorAll('td, th')).map(c => c.getBoundingClientRect().height)),"
        " scrolls: getComputedStyle(t).overflowX})")
    assert cells["nowrap"] == "nowrap" and cells["scrolls"] == "auto" and cells["tallest"] < 60, cells
    shot(page, "phone", docs=True)
    page.close()

    # the palette by keyboard: open the /count section, fill its text, run it
    page = open_page(browser, app_url)
    toggle = page.locator("#palette-count button").first
    toggle.focus()
    page.keyboard.press("Enter")
    text = page.locator("#palette-count-text textarea")
    text.wait_for(timeout=20_000)
    assert text.input_value() == "The cat sat on the mat"  # pre-filled from the tool's example
    text.fill("hello world")
    page.locator("#run-count").press("Enter")  # Enter on the focused Run button runs it
    bot_text(page, "for 11 characters")  # the edited text, not the example
    shot(page, "palette")
    page.close()


def _pick(page, name: str) -> None:
    """Open the tool's palette section (its form is built then) unless it is open already."""
    if not page.locator(f"#run-{name}").is_visible():
        page.locator(f"#palette-{name} button").first.click()
    page.locator(f"#run-{name}").wait_for(timeout=20_000)
    page.locator(f"#run-{name}").scroll_into_view_if_needed()


def _turn_replies(page, command: str, timeout_s: float = 300.0) -> list[str]:
    """The bot messages after the user message `command`, once the turn is over."""
    deadline = time.monotonic() + timeout_s
    while not any(u.strip().startswith(command) for u in users(page)):
        assert time.monotonic() < deadline, f"{command} never appeared; chat: {page.locator('#chat').inner_text()[-800:]}"
        time.sleep(0.3)
    settle(page, quiet_s=4.0, timeout_s=timeout_s)
    texts = page.locator('#chat [data-testid="user"], #chat [data-testid="bot"]').evaluate_all(
        "els => els.map(e => [e.getAttribute('data-testid'), e.innerText])")
    start = max(i for i, (who, t) in enumerate(texts) if who == "user" and t.strip().startswith(command))
    return [t for who, t in texts[start + 1:] if who == "bot"]


# Record every progress line the chat shows ("⏳ Loading smollm2-135m onto cpu — 3 s so far").
LOADING_WATCH = """
() => {
  window.__loading = [];
  new MutationObserver(() => document.querySelectorAll('#chat [data-testid="bot"]').forEach(m => {
    const t = m.innerText.trim();
    if (t.startsWith('⏳') && !window.__loading.includes(t)) window.__loading.push(t);
  })).observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}
"""


@pytest.fixture
def fresh_url(tutor, tmp_path_factory):
    """A server with its own model cache, so its first model tool loads (and says so)."""
    t = Tutor(Settings(home=tmp_path_factory.mktemp("palettehome"), assets_dir=ASSETS, offline="yes"),
              registry=tutor.registry)
    with running(web.server_app(t)) as url:
        yield url


def test_every_palette_tool_runs_as_prefilled(browser, fresh_url, tutor):
    """Open each tool in the palette and press Run: the form as it stands gives a real answer."""
    page = open_page(browser, fresh_url)
    page.evaluate(LOADING_WATCH)
    failures = {}
    for name in sorted(tutor.registry.tools):
        _pick(page, name)
        if name == "generate":
            shot(page, "palette-generate", docs=True)
        page.locator(f"#run-{name}").click()
        replies = _turn_replies(page, f"/{name}")
        text = "\n".join(replies)
        if name == "finetune":  # its example trains on the shipped corpus: no upload needed
            assert "Saved as" in text and "python-docs" in text, text
        if not replies or any(r.lstrip().startswith("⚠️") for r in replies):
            failures[name] = text[:400]
    assert not failures, failures
    # the first model tool loaded its model: the page said so while it waited
    assert any(line.startswith("⏳ Loading smollm2-135m") for line in page.evaluate("window.__loading")), \
        page.evaluate("window.__loading")
    send(page, "/tokenize gpt2 unhappiness")
    page.locator("#chat .tok").last.wait_for(timeout=60_000)
    _pick(page, "generate")
    shot(page, "screenshot", docs=True)  # the README's picture of the page
    page.close()


def test_reload_during_a_streaming_generate(browser, app_url):
    page = open_page(browser, app_url)
    send(page, "/generate --max-tokens 200 --seed 1 Once upon a time")
    page.locator("#chat .tok").first.wait_for(timeout=300_000)  # tokens are streaming
    before = page.locator("#chat .tok").count()
    page.reload()
    page.locator("#message textarea").wait_for(timeout=30_000)
    page.locator('#chat [data-testid="user"]', has_text="Once upon a time").first.wait_for(timeout=30_000)
    bot_text(page, "Re-attached", timeout=30_000)
    assert page.locator("#chat .tok").count() >= before  # every token streamed so far, not an empty turn
    shot(page, "reload-generate", docs=True)
    page.wait_for_function(f"document.querySelectorAll('#chat .tok').length > {before}", timeout=120_000)
    settle(page, quiet_s=4.0)
    assert "Re-attached" not in page.locator("#chat").inner_text()  # the turn ended; the note goes
    page.close()


# Record every queued note the chat shows (it may be there only briefly).
QUEUE_WATCH = """
() => {
  window.__queued = 0;
  new MutationObserver(() => { if (document.querySelector('#chat').innerText.includes('Queued')) window.__queued++; })
    .observe(document.querySelector('#chat'), {subtree: true, childList: true, characterData: true});
}
"""


def test_two_messages_back_to_back_are_both_answered_in_order(browser, app_url):
    page = open_page(browser, app_url)
    page.evaluate(QUEUE_WATCH)
    send(page, "/generate --max-tokens 40 --seed 2 The cat sat on the")
    send(page, "/count o200k_base hello there")  # while the first still runs
    page.wait_for_function("window.__queued > 0", timeout=60_000)
    shot(page, "queued", docs=True)
    bot_text(page, "tokens with o200k_base", timeout=300_000)
    settle(page, quiet_s=3.0)
    said = users(page)
    assert [u for u in said if u.startswith("/")][-2:] == ["/generate --max-tokens 40 --seed 2 The cat sat on the",
                                                           "/count o200k_base hello there"], said
    assert "Queued" not in page.locator("#chat").inner_text()
    page.close()


def test_an_uploaded_image_and_recording(browser, app_url):
    import numpy as np
    import soundfile
    from PIL import Image

    page = open_page(browser, app_url)
    picture = ARTIFACTS / "stripes.png"
    pixels = np.zeros((240, 320, 3), dtype=np.uint8)
    pixels[:, ::16, 0] = 255
    pixels[::16, :, 2] = 255
    Image.fromarray(pixels).save(picture)
    value = upload(page, picture)
    assert value.startswith("/patches --file ") and "stripes.png" in value
    page.locator("#message textarea").press("Enter")
    bot_text(page, "your upload", timeout=60_000)
    figure = page.locator("#chat img").last
    figure.wait_for(timeout=30_000)
    assert figure.bounding_box()["height"] > 350  # readable, not shrunk to ~300 px
    shot(page, "upload-image", docs=True)

    sound = ARTIFACTS / "a440.wav"
    t = np.arange(int(1.5 * 22_050)) / 22_050
    soundfile.write(str(sound), 0.3 * np.sin(2 * np.pi * 440 * t), 22_050)
    value = upload(page, sound)
    assert value.startswith("/spectrogram --file ") and "a440.wav" in value
    page.locator("#message textarea").press("Enter")
    bot_text(page, "a440.wav (your upload, 22,050 Hz", timeout=60_000)
    page.locator("#chat img").nth(1).wait_for(timeout=30_000)
    shot(page, "upload-audio", docs=True)
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

        # the iframe, loaded again, shows the conversation (not a stale, empty chat)
        page.reload()
        frame = page.frame_locator("#tutor-frame")
        frame.locator("#chat").get_by_text("hello from the course").last.wait_for(timeout=60_000)
        # the mounted route: the same learner (signed by the course login) sees the same history
        page.goto(url + "/tutor/")
        page.locator("#chat").get_by_text("hello from the course").last.wait_for(timeout=30_000)
        page.close()

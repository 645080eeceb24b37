"""/lens in the real page: its chart is a shaded HTML table, and Gradio's own sanitiser keeps the
shading (a browser test: `python -m pytest -m browser tests/test_lens_page.py`)."""

import pytest

from test_browser import ARTIFACTS, app_url, bot_text, browser, open_page, send  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser


def test_lens_chart_is_a_shaded_table_in_the_page(browser, app_url):  # noqa: F811
    page = open_page(browser, app_url)
    send(page, "/lens smollm2-135m The capital of France is")
    bot_text(page, "logit lens: top-1 next token", timeout=120_000)
    chart = page.locator("#chat .tutor-heatmap").last
    cells = chart.locator("td")
    assert cells.count() == 31 * 5  # 30 blocks and the embeddings x the prompt's 5 tokens, all charted
    top_right = cells.nth(4)  # the last layer, the last position: the model's own prediction
    assert "Paris" in top_right.inner_text()
    shade = top_right.evaluate("e => getComputedStyle(e).backgroundColor")
    assert shade not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)"), shade  # the inline shade survived
    assert "p = " in top_right.get_attribute("title")
    chart.screenshot(path=str(ARTIFACTS / "lens-chart.png"))

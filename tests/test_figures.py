"""tutor.figures.Heatmap: an HTML table on the page and in notebooks, a PNG in a terminal."""

import io

from tutor import web
from tutor.figures import Heatmap, shade_rgb
from tutor.tools import Reply


def _heatmap() -> Heatmap:
    return Heatmap(title="<b>t</b>", rows=["1", "emb"], columns=["<script>", " x"],
                   cells=[["<img src=x onerror=alert(1)>", "a"], ["b", "c"]], values=[[0.9, 0.1], [0.0, 1.0]],
                   caption="what & why", tips=[['say "hi"', "t"], ["u", "v"]])


def test_heatmap_html_escapes_every_text_and_shades_each_cell():
    page = _heatmap().html()
    assert "<script>" not in page and "<img" not in page and "<b>t" not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'title="say &quot;hi&quot;"' in page and "what &amp; why" in page
    assert page.count("<td ") == 4 and "background:rgb(8, 48, 107);color:#fff" in page  # value 1: dark, white text
    assert "background:rgb(255, 255, 255);color:#111" in page and "<small" in page and "0.90" in page
    assert shade_rgb(0.5) == (132, 152, 181) and shade_rgb(-3) == (255, 255, 255) and shade_rgb(7) == (8, 48, 107)


def test_heatmap_is_html_in_the_page_and_notebook_and_a_png_for_a_terminal(tmp_path):
    heat = _heatmap()
    messages = web.reply_messages(Reply(text="a chart", figure=heat), tmp_path / "figures")
    assert messages[1]["content"] == heat.html()
    assert not (tmp_path / "figures").exists()  # nothing drawn, nothing written
    assert heat.html() in Reply(figure=heat)._repr_html_()
    png = io.BytesIO()
    heat.savefig(png, format="png", dpi=60, bbox_inches="tight")  # as tutor/cli.py saves a figure
    assert png.getvalue()[:4] == b"\x89PNG"
    assert len(heat.draw().axes[0].texts) == 4

"""The notebook API and the terminal twin: the final Reply, rendered as the page does; state kept."""

from __future__ import annotations

import json
import subprocess
import sys

from tutor.tools import Reply, Span, Table


def test_tutor_ask_returns_the_final_reply_and_renders_it(tutor):
    from tutor import Tutor

    t = Tutor(tutor.settings, registry=tutor.registry)
    r = t.ask("/tokenize gpt2 unhappiness")
    assert isinstance(r, Reply) and not r.error
    ids = [s.id for s in r.spans]
    assert ids == [403, 71, 42661]  # gpt2 BPE: un|h|appiness
    assert r.data and r.text
    page = r._repr_html_()
    assert page.count("<span style=") == 3 and 'title="' in page
    assert "appiness" in page
    # a mistake is a reply that says how to fix it, never an exception
    bad = t.ask("/tokenize nosuchtokenizer hi")
    assert bad.error and "Unknown tokenizer" in bad.text


def test_repr_html_escapes_and_shows_tables_and_figures():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    r = Reply(text="**bold** <script>alert(1)</script> <img src=x onerror=alert(2)>",
              spans=[Span("<b>", 1, 0), Span(" x", 2, 1)],
              table=Table(["module", "parameters"], [["transformer.h.0", "7,087,872"]]), figure=fig,
              buttons=["/count hi"])
    page = r._repr_html_()
    assert "<strong>bold</strong>" in page
    assert "<script>" not in page and "onerror" not in page
    assert "&lt;b&gt;" in page and "␣x" in page  # token text escaped, spaces made visible
    assert "overflow-x:auto" in page and "white-space:nowrap" in page and "7,087,872" in page
    assert page.count("data:image/png;base64,") == 1
    assert "<code>/count hi</code>" in page


def _tutor_cli(home, *args):
    env_cmd = [sys.executable, "-m", "tutor.cli", "ask", "--offline", "yes", "--home", str(home), *args]
    return subprocess.run(env_cmd, capture_output=True, text=True, timeout=300)


def test_terminal_keeps_a_learners_state_and_prints_figure_paths(tmp_path):
    home = tmp_path / "home"
    first = _tutor_cli(home, "/bpe train --merges 2 low lower lowest")
    assert first.returncode == 0, first.stderr
    step = _tutor_cli(home, "--json", "/bpe step")
    assert step.returncode == 0, step.stderr + step.stdout
    assert json.loads(step.stdout)["step"] == 3  # the third merge: the run went on from the last call
    # another learner starts afresh
    other = _tutor_cli(home, "--learner", "bob", "/bpe step")
    assert other.returncode == 1 and "Nothing trained" in other.stdout + other.stderr
    # a figure is saved and its path printed
    fig = _tutor_cli(home, "/patches")
    line = next(ln for ln in fig.stdout.splitlines() if ln.startswith("figure: "))
    path = line.split(": ", 1)[1]
    assert path.endswith(".png") and (tmp_path / "home" / "figures").exists()
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    bad = _tutor_cli(home, "--learner", "../x", "/help")
    assert bad.returncode == 2 and "--learner" in bad.stderr

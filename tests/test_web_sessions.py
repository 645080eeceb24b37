"""What a new Gradio session costs (tutor/web/sessions.py) and what it still gives: the lazily
built configs equal Gradio's own over the whole page, and a sessionless call over HTTP (a course
site's, an MCP client's) neither builds them nor Gradio's per-event pandas summary. What a
session costs each way is measured in bench/bench_web.py, not timed here."""

from __future__ import annotations

import json

import httpx
import pytest
from gradio import queueing
from gradio.state_holder import SessionState

from tutor import web
from tutor.context import Tutor
from tutor.settings import Settings
from tutor.web import sessions

from conftest import ASSETS
from web_server import running


@pytest.fixture(scope="module")
def page(tutor):
    return web.build_app(tutor)


def eager_and_lazy(page):
    sessions.uninstall()
    try:
        eager = SessionState(page)
    finally:
        sessions.install()
    return eager, SessionState(page)


def test_a_new_session_builds_no_config_until_one_is_read(page):
    eager, lazy = eager_and_lazy(page)
    assert len(eager.config_values) > 150  # the whole page: Gradio built every one
    assert dict.__len__(lazy.config_values) == 0  # built: none yet
    assert len(lazy.config_values) == len(eager.config_values)  # but all are there to read
    assert sorted(vars(lazy)) == sorted(vars(eager))


def test_lazy_configs_equal_gradios_in_order_and_for_deep_links(page):
    eager, lazy = eager_and_lazy(page)
    first = next(iter(eager.config_values))
    assert lazy.config_values[first] == eager.config_values[first]  # one read builds one
    assert dict.__len__(lazy.config_values) == 1
    assert list(lazy.config_values.items()) == list(eager.config_values.items())
    assert list(lazy.components) == list(eager.components)  # what a deep link restores


def test_a_value_set_in_a_session_reads_back_as_in_gradio(page):
    eager, lazy = eager_and_lazy(page)
    box = next(k for k, v in eager.config_values.items() if v.get("type") == "textbox")
    for state in (eager, lazy):
        state._update_value_in_config(box, "typed by this learner")
    assert lazy.config_values[box]["props"]["value"] == "typed by this learner"
    assert lazy.config_values == eager.config_values
    other = SessionState(page)  # another learner's new session: its own, untouched copy
    assert other.config_values[box]["props"].get("value") != "typed by this learner"
    assert 10**9 not in lazy.config_values and lazy.config_values.get(10**9) is None
    with pytest.raises(KeyError):
        lazy.config_values[10**9]


def test_sessionless_gradio_calls_build_neither_configs_nor_the_event_summary(tutor, tmp_path, monkeypatch):
    summaries, builds = [], []
    real_df = queueing.Queue._get_df
    monkeypatch.setattr(queueing.Queue, "_get_df", staticmethod(lambda r: summaries.append(len(r)) or real_df(r)))
    t = Tutor(Settings(home=tmp_path, assets_dir=ASSETS, offline="yes"), registry=tutor.registry)
    with running(web.server_app(t)) as url:
        real_config = SessionState.__init__  # as the server installed it
        monkeypatch.setattr(SessionState, "__init__", lambda self, b: builds.append(
            dict.__len__(real_config(self, b) or self.config_values)))
        for _ in range(3):  # as curl or a course server calls Gradio's API: no session
            r = httpx.post(url + "/gradio_api/call/ask", json={"data": ["/count gpt2 hello world", ""]})
            r.raise_for_status()
            with httpx.stream("GET", f"{url}/gradio_api/call/ask/{r.json()['event_id']}") as events:
                lines = list(events.iter_lines())
            assert "event: complete" in lines, lines
            reply = json.loads(lines[lines.index("event: complete") + 1].removeprefix("data: "))[0]
            assert reply["error"] is False and reply["data"]["counts"] == {"gpt2": 2}
    assert builds == [0, 0, 0]  # a session per call, none of which built a config
    assert summaries == []  # Gradio's monitoring summary is off with its page


def test_events_of_one_session_can_read_its_configs_at_once(page):
    from concurrent.futures import ThreadPoolExecutor
    eager, lazy = eager_and_lazy(page)
    keys = list(eager.config_values) * 8
    with ThreadPoolExecutor(8) as pool:  # each config asked for by 8 threads, none built yet
        got = list(pool.map(lambda k: lazy.config_values[k], keys))
    assert got == [eager.config_values[k] for k in keys]
    assert dict.__len__(lazy.config_values) == len(eager.config_values)

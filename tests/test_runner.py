"""The page's turns without a browser: queued in order, stored as they stream, followed after a reload."""

from __future__ import annotations

import threading

import pytest

from tutor import Reply
from tutor.context import Tutor
from tutor.history import DONE, QUEUED, HistoryStore
from tutor.reporting import working
from tutor.tools import Tool
from tutor.runner import QUEUED_NOTE, STOPPED_NOTE, TurnRunner

GATE = threading.Event()


def hold(ctx, text: str = "") -> Reply:
    """Wait for the test's gate, saying what it waits for; then stream two replies."""
    with working("Converting something slow", expect_s=30):
        while not GATE.wait(0.02):
            if ctx.cancel.is_set():
                yield Reply(text="cancelled")
                return
    yield Reply(text="half", done=False)
    yield Reply(text=f"held {text}")


SAVED = threading.Event()


def linger(ctx) -> Reply:
    """Run until Stop, then take until the test's SAVED gate to wind down (a fine-tune saving)."""
    while not ctx.cancel.wait(0.02):
        yield Reply(text="training", done=False)
    yield Reply(text="stopped; saving…", done=False)
    SAVED.wait(60)
    yield Reply(text="saved what it learnt")


@pytest.fixture
def turns(tutor, tmp_path):
    tools = dict(tutor.registry.tools)
    tutor.registry.tools["hold"] = Tool.from_function(hold)
    tutor.registry.tools["linger"] = Tool.from_function(linger)
    GATE.clear()
    SAVED.clear()
    t = Tutor(tutor.settings, registry=tutor.registry)
    store = HistoryStore(tmp_path / "history.sqlite")
    try:
        yield TurnRunner(t, store, lambda r: [{"role": "assistant", "content": r.text}], max_queued=2, tick_s=0.05)
    finally:
        GATE.set()
        SAVED.set()
        tutor.registry.tools = tools


def texts(messages):
    return [m["content"] for m in messages]


def last(follower):
    out = None
    for out in follower:
        pass
    return out


def test_a_message_sent_during_a_turn_is_queued_then_answered_in_order(turns):
    first = turns.submit("ada", "/hold one")
    second = turns.submit("ada", "/count o200k_base hello")
    states = {n: s for n, s, _ in turns.store.turns("ada")}
    assert states[second] == QUEUED
    assert QUEUED_NOTE in texts(turns.store.messages("ada"))
    # the page follows: progress appears while /hold waits
    follower = turns.follow("ada", first)
    seen = []
    for messages in follower:
        seen.append(texts(messages))
        if any("Converting something slow" in t for t in seen[-1]):
            GATE.set()
    assert seen[-1][:2] == ["/hold one", "held one"]
    final = texts(last(turns.follow("ada", second)))
    assert final[0:2] == ["/hold one", "held one"] and final[2] == "/count o200k_base hello"
    assert "hello" in final[3] or "token" in final[3]
    assert all(s == DONE for _, s, _ in turns.store.turns("ada"))


def test_a_reload_finds_the_streaming_turn_and_follows_it(turns):
    n = turns.submit("ada", "/hold x")
    reloaded = turns.follow("ada")  # a new page: no turn number, it follows whatever runs
    now = texts(next(reloaded))
    assert now[0] == "/hold x"
    for messages in reloaded:
        if any("Converting" in t for t in texts(messages)):
            GATE.set()
    assert texts(turns.store.messages("ada")) == ["/hold x", "held x"]
    assert not turns.busy("ada") and n == 1


def test_stop_ends_the_running_turn_and_a_full_queue_is_refused(turns):
    n = turns.submit("ada", "/hold a")
    turns.submit("ada", "/hold b")
    turns.submit("ada", "/hold c")
    refused = turns.submit("ada", "/hold d")
    assert "messages waiting" in texts(turns.store.messages("ada"))[-1]
    for messages in turns.follow("ada", n):
        if texts(messages)[1].startswith("⏳ Converting"):  # turn a waits: stop it (only it)
            turns.stop("ada")
    got = texts(turns.store.messages("ada"))
    assert got[:3] == ["/hold a", "cancelled", STOPPED_NOTE]
    GATE.set()
    last(turns.follow("ada"))
    got = texts(turns.store.messages("ada"))
    assert "held b" in got and "held c" in got and refused == 4, repr(got)
    # another learner never waits behind ada, nor sees her turns
    bob = turns.submit("bob", "/count o200k_base hi")
    assert texts(last(turns.follow("bob", bob)))[0] == "/count o200k_base hi"
    assert len(turns.store.messages("bob")) == 2


def test_after_stop_the_next_message_runs_while_the_stopped_tool_winds_down(turns):
    """Before: a message sent after Stop waited until a stopped fine-tune had measured and saved."""
    n = turns.submit("ada", "/linger")
    nxt = turns.submit("ada", "/count o200k_base hello")
    for messages in turns.follow("ada", n):
        if "training" in texts(messages):
            turns.stop("ada")
            break
    got = texts(last(turns.follow("ada", nxt)))  # answered while /linger still saves
    assert got[0] == "/linger" and got[-2] == "/count o200k_base hello" and "token" in got[-1], got
    assert "saved what it learnt" not in got and turns.busy("ada")
    SAVED.set()
    last(turns.follow("ada"))  # a reloaded page follows the winding-down turn to its end
    got = texts(turns.store.messages("ada"))
    assert got[:3] == ["/linger", "saved what it learnt", STOPPED_NOTE], got  # in its own place
    assert not turns.busy("ada") and all(s == DONE for _, s, _ in turns.store.turns("ada"))

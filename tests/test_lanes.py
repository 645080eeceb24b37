"""Lanes: quick turns never wait behind slow ones; bounded queues answer "busy"; time limits."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from tutor import Reply, Tool
from tutor.lanes import LaneLimits, Lanes, lane_for, message_lane


def blocking(release: threading.Event, started: threading.Semaphore):
    def work() -> Iterator[Reply]:
        started.release()
        release.wait(30)
        yield Reply(text="slow done")
    return work


def quick() -> Iterator[Reply]:
    yield Reply(text="quick done")


def drain(gen) -> list[Reply]:
    return list(gen)


def start(fn, *args) -> threading.Thread:
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def test_quick_turns_do_not_wait_behind_model_turns():
    lanes = Lanes(LaneLimits(quick=2, model=2, queue=8, per_learner=2))
    release, started = threading.Event(), threading.Semaphore(0)
    results: list = []
    for i in range(4):  # two run, two wait in the model lane
        start(lambda i=i: results.append(drain(lanes.run(f"m{i}", "model", blocking(release, started),
                                                         threading.Event()))))
    for _ in range(2):
        assert started.acquire(timeout=10)
    replies = drain(lanes.run("q", "quick", quick, threading.Event()))
    assert [r.text for r in replies] == ["quick done"]  # while the model lane is still full
    assert lanes.status()["model"] == {"running": 2, "waiting": 2}
    release.set()


def test_a_full_queue_says_busy_with_the_count_ahead_and_then_refuses():
    lanes = Lanes(LaneLimits(model=1, queue=2, per_learner=5))
    release, started = threading.Event(), threading.Semaphore(0)
    start(drain, lanes.run("a", "model", blocking(release, started), threading.Event()))
    assert started.acquire(timeout=10)
    waiting = [lanes.run(f"w{i}", "model", quick, threading.Event()) for i in range(2)]
    firsts = [next(w) for w in waiting]  # each queues and says where it stands
    assert "you are next" in firsts[0].text and "1 ahead of you" in firsts[1].text
    assert not firsts[0].done and not firsts[0].error
    refused = drain(lanes.run("late", "model", quick, threading.Event()))
    assert len(refused) == 1 and refused[0].error and "busy" in refused[0].text and "2 turns" in refused[0].text
    release.set()
    assert [r.text for r in drain(waiting[0])][-1] == "quick done"
    assert [r.text for r in drain(waiting[1])][-1] == "quick done"
    assert lanes.status()["model"] == {"running": 0, "waiting": 0}


def test_control_turns_never_queue():
    """A typed /finetune cancel gets through while every lane and the learner's own limit are full."""
    lanes = Lanes(LaneLimits(quick=1, model=1, long=1, queue=0, per_learner=1))
    release, started = threading.Event(), threading.Semaphore(0)
    for lane, who in (("quick", "x"), ("model", "y"), ("long", "ada")):
        start(drain, lanes.run(who, lane, blocking(release, started), threading.Event()))
        assert started.acquire(timeout=10)
    assert drain(lanes.run("z", "quick", quick, threading.Event()))[0].error  # full, no queue
    assert [r.text for r in drain(lanes.run("ada", "control", quick, threading.Event()))] == ["quick done"]
    release.set()


def test_per_learner_limit_and_others_unaffected():
    lanes = Lanes(LaneLimits(quick=8, per_learner=2))
    release, started = threading.Event(), threading.Semaphore(0)
    for _ in range(2):
        start(drain, lanes.run("ada", "quick", blocking(release, started), threading.Event()))
        assert started.acquire(timeout=10)
    refused = drain(lanes.run("ada", "quick", quick, threading.Event()))
    assert refused[0].error and "2 turns running" in refused[0].text
    assert drain(lanes.run("bo", "quick", quick, threading.Event()))[0].text == "quick done"
    release.set()


def test_time_limit_stops_a_turn_and_sets_its_cancel_flag():
    lanes = Lanes(LaneLimits(quick_s=0.3, per_learner=1))
    cancel, release, started = threading.Event(), threading.Event(), threading.Semaphore(0)
    replies = drain(lanes.run("ada", "quick", blocking(release, started), cancel))
    assert replies[-1].error and "time limit (0.3 s)" in replies[-1].text and cancel.is_set()
    # the slot stays held until the tool really returns, then the learner may go again
    assert lanes.status()["quick"]["running"] == 1
    release.set()
    for _ in range(100):
        if lanes.status()["quick"]["running"] == 0:
            break
        threading.Event().wait(0.05)
    assert drain(lanes.run("ada", "quick", quick, threading.Event()))[0].text == "quick done"


def test_long_turns_have_no_time_limit():
    lanes = Lanes(LaneLimits(quick_s=0.01, model_s=0.01))
    release, started = threading.Event(), threading.Semaphore(0)
    t = threading.Timer(0.5, release.set)
    t.start()
    assert drain(lanes.run("ada", "long", blocking(release, started), threading.Event()))[-1].text == "slow done"


def test_stop_while_waiting_leaves_the_queue():
    lanes = Lanes(LaneLimits(model=1, queue=4))
    release, started = threading.Event(), threading.Semaphore(0)
    start(drain, lanes.run("a", "model", blocking(release, started), threading.Event()))
    assert started.acquire(timeout=10)
    cancel = threading.Event()
    waiting = lanes.run("b", "model", quick, cancel)
    assert "you are next" in next(waiting).text
    cancel.set()
    assert drain(waiting) == [] and lanes.status()["model"]["waiting"] == 0 and lanes.turns.get("b") is None
    release.set()


def test_lane_for_tools(tutor):
    tools = tutor.registry.tools
    assert lane_for(tools["count"], {}) == "quick"
    assert lane_for(tools["generate"], {}) == "model"
    assert lane_for(tools["finetune"], {"action": None}) == "long"
    assert lane_for(tools["finetune"], {"action": "cancel"}) == "control"
    assert message_lane("/finetune cancel", tutor) == "control"
    assert message_lane("/FINETUNE --nope", tutor) == "quick" and message_lane("next", tutor) == "quick"

    def sleepy(ctx) -> Reply:
        """Sleep (a test tool)."""
        return Reply()
    assert lane_for(Tool.from_function(sleepy), {}) == "quick"


def test_what_a_turns_tool_reports_reaches_its_listener():
    """Before: the lane ran the tool in a fresh thread without the turn's context, so the page
    said only "Working — N s" while a model loaded, never "Loading smollm2-135m"."""
    from tutor.reporting import listening, report

    def loads() -> Iterator[Reply]:
        report("Loading a model", expect_s=3)
        yield Reply(text="loaded")

    seen: list = []
    with listening(seen.append):
        replies = drain(Lanes(LaneLimits()).run("ada", "model", loads, threading.Event()))
    assert [r.text for r in replies] == ["loaded"]
    assert [r.what for r in seen] == ["Loading a model"]

"""Bounded resources: idle sessions are forgotten, uploads have a quota, an owner and an age."""

from __future__ import annotations

import os
import time

from tutor.context import Tutor
from tutor.settings import Settings
from tutor.web.uploads import Ledger


def test_idle_sessions_are_forgotten_and_the_count_is_bounded(tutor, tmp_path):
    t = Tutor(Settings(home=tmp_path, offline="yes", session_idle_minutes=10, max_sessions=100),
              registry=tutor.registry)
    ada = t.session("ada")
    ada.state["x"] = {"kept": True}
    for i in range(1000):
        t.session(f"visitor-{i}")
    assert len(t._sessions) <= 100  # before: every session ever seen stayed in memory
    assert "ada" not in t._sessions
    t2 = Tutor(Settings(home=tmp_path, offline="yes", session_idle_minutes=10), registry=tutor.registry)
    bo = t2.session("bo")
    assert t2.session("bo") is bo  # in use: the same session
    bo.seen -= 11 * 60  # idle for 11 minutes
    t2.session("newcomer")
    assert "bo" not in t2._sessions and t2.session("bo") is not bo


def test_upload_quota_per_learner_and_server_cap(tmp_path):
    ledger = Ledger(quota_bytes=1000, server_cap_bytes=1500, max_age_s=3600)
    f = tmp_path / "a.txt"
    f.write_bytes(b"x" * 800)
    ledger.claim("ada", f)
    assert ledger.used("ada") == 800 and ledger.owns("ada", f) and not ledger.owns("bo", f)
    assert "quota" in ledger.refusal("ada", 300)
    assert ledger.refusal("bo", 600) is None
    g = tmp_path / "b.txt"
    g.write_bytes(b"y" * 600)
    ledger.claim("bo", g)
    assert "server" in ledger.refusal("cy", 200)


def test_uploads_expire(tmp_path):
    root = tmp_path / "uploads"
    (root / "h1").mkdir(parents=True)
    old, new, stray = root / "h1" / "old.txt", root / "h1" / "new.txt", root / "stray.txt"
    for p in (old, new, stray):
        p.write_text("hi")
    ledger = Ledger(10**6, 10**7, max_age_s=60)
    now = time.time()
    ledger.claim("ada", old, now=now - 120)
    ledger.claim("ada", new, now=now)
    os.utime(stray, (now - 120, now - 120))  # left by an earlier run, never noted
    assert ledger.sweep(root, now=now) == 2
    assert not old.exists() and not stray.exists() and new.exists()
    assert ledger.used("ada") == 2 and ledger.owner(old) is None

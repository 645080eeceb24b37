"""Who a request acts for: signed course logins with an expiry, server-issued session tokens."""

from __future__ import annotations

import stat
import time
from types import SimpleNamespace

import pytest

from tutor.web import learners
from tutor.web.learners import SessionKeys, request_learner, sign_learner, verify_learner


def test_signed_value_round_trip_and_forgeries():
    value = sign_learner("s3cret", "ada")
    assert verify_learner("s3cret", value) == "ada"
    name, expiry, mac = value.split(".")
    assert verify_learner("other", value) is None
    assert verify_learner("s3cret", f"bob.{expiry}.{mac}") is None  # the name is covered by the MAC
    assert verify_learner("s3cret", f"ada.{int(expiry) + 10**6}.{mac}") is None  # so is the expiry
    assert verify_learner("s3cret", None) is None and verify_learner("s3cret", "ada") is None


def test_a_signed_value_expires():
    """Before: a signed header never expired, so a captured one could be replayed forever."""
    now = time.time()
    value = sign_learner("k", "ada", ttl_s=60, now=now)
    assert verify_learner("k", value, now=now + 59) == "ada"
    assert verify_learner("k", value, now=now + 61) is None


def test_the_old_value_without_expiry_is_refused():
    import hashlib
    import hmac
    old = "ada." + hmac.new(b"k", b"ada", hashlib.sha256).hexdigest()  # ID.MAC, as before
    assert verify_learner("k", old) is None


def test_learner_names_with_dots_or_junk_are_refused_when_signing():
    for bad in ("a.b", "", "x" * 65, "a b", "ümlaut"):
        with pytest.raises(ValueError):
            sign_learner("k", bad)


def test_session_tokens_are_the_servers_own(tmp_path):
    keys = SessionKeys.at(tmp_path)
    token = keys.issue()
    learner = keys.learner(token)
    assert learner and learner.startswith("web-") and keys.learner(keys.issue()) != learner
    for made_up in ("alice", "web-alice", token.split(".")[0] + "." + "0" * 32, token[:-1] + "x", "", None):
        assert keys.learner(made_up) is None
    assert SessionKeys.at(tmp_path).learner(token) == learner  # the key survives a restart
    assert SessionKeys(b"another key").learner(token) is None
    assert stat.S_IMODE((tmp_path / "session.key").stat().st_mode) == 0o600


def _request(headers=None, cookies=None):
    return SimpleNamespace(headers=headers or {}, cookies=cookies or {})


def test_request_learner_without_a_secret(tmp_path):
    keys = SessionKeys.at(tmp_path)
    token = keys.issue()
    assert request_learner(_request(cookies={learners.SESSION_COOKIE: token}), keys, None) == keys.learner(token)
    assert request_learner(_request(), keys, None, token=token) == keys.learner(token)
    assert request_learner(_request(cookies={learners.SESSION_COOKIE: "alice"}), keys, None) is None
    # without a secret, a login header names nobody (anyone could send one)
    assert request_learner(_request({learners.LEARNER_HEADER: sign_learner("k", "ada")}), keys, None) is None


def test_request_learner_with_a_secret_needs_the_login(tmp_path):
    keys = SessionKeys.at(tmp_path)
    login = _request({learners.LEARNER_HEADER: sign_learner("k", "ada")})
    assert request_learner(login, keys, "k") == "user:ada"
    assert request_learner(_request(cookies={learners.LEARNER_COOKIE: sign_learner("k", "bo")}), keys, "k") == "user:bo"
    assert request_learner(_request(cookies={learners.SESSION_COOKIE: keys.issue()}), keys, "k") is None
    assert request_learner(_request({learners.LEARNER_HEADER: sign_learner("other", "ada")}), keys, "k") is None

"""Test isolation: every test gets its own data dir; verified assets are shared across tests.

Assets (verified package files, the converted SmolLM2 folder) are read-only once written, so
one copy serves the whole run: TUTOR_TEST_ASSETS_DIR, default ~/.cache/tutor-test-assets.
"""

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

# Hypothesis draws new examples each run, so a local run keeps finding new inputs; CI runs
# `TUTOR_HYPOTHESIS=ci` (a fixed seed), so whether main lands does not depend on the draw.
# Every bug a random run finds is fixed and pinned in tests/test_fuzz.py.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("TUTOR_HYPOTHESIS", "default"))

ASSETS = Path(os.environ.get("TUTOR_TEST_ASSETS_DIR", Path.home() / ".cache" / "tutor-test-assets"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TUTOR_ASSETS_DIR", str(ASSETS))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(ASSETS / "tiktoken"))
    monkeypatch.setenv("TUTOR_ENTRY_POINTS", "0")  # installed third-party plugins stay out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no test waits on the hub
    monkeypatch.delenv("TUTOR_PLUGINS", raising=False)


@pytest.fixture(scope="session")
def tutor(tmp_path_factory):
    """One Tutor for the whole run, so each real model loads once."""
    from tutor.context import Tutor
    from tutor.settings import Settings

    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(ASSETS / "tiktoken"))
    return Tutor(Settings(home=tmp_path_factory.mktemp("home"), assets_dir=ASSETS, offline="yes"))


@pytest.fixture
def session(tutor):
    return tutor.session(uuid.uuid4().hex)


@pytest.fixture
def ask(session):
    """ask("/count hello") -> the final Reply of that turn."""
    from tutor import chat

    return lambda message: chat.final(message, session)

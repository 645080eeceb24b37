"""What `tutor ask` keeps between calls: a terminal learner's tool state, in the data dir.

A terminal call is one process, so `/bpe step` or `/generate --step` would forget the run they
step through. Each tool's state (`ctx.state(NAME)`) is pickled after the call and read back
before the next one, per learner (`tutor ask --learner NAME`). State a tool keeps that cannot be
pickled (a running thread, an open file) is left out, and the call says which.
The file is the learner's own, written by this program into their data dir (temp file, rename).
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

LEARNER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_learner(name: str) -> str:
    if not LEARNER.match(name):
        raise ValueError(f"--learner {name!r}: use 1 to 64 letters, digits, - or _ (e.g. --learner ada).")
    return name


def state_path(home: Path, learner: str) -> Path:
    return Path(home) / "terminal" / f"{check_learner(learner)}.pickle"


def load_state(home: Path, learner: str) -> dict[str, dict[str, Any]]:
    """The learner's saved tool state; empty when there is none or it no longer loads (a tool
    changed between versions): the learner then starts that tool afresh."""
    path = state_path(home, learner)
    if not path.is_file():
        return {}
    out = {}
    try:
        saved = pickle.loads(path.read_bytes())
    except Exception:  # an unreadable file: start afresh rather than fail every call
        return {}
    for name, blob in saved.items():
        try:
            out[name] = pickle.loads(blob)
        except Exception:  # one tool's state from an older version
            continue
    return out


def save_state(home: Path, learner: str, state: dict[str, dict[str, Any]]) -> list[str]:
    """Write each tool's state that pickles; returns the names of those that did not."""
    kept, skipped = {}, []
    for name, value in state.items():
        try:
            kept[name] = pickle.dumps(value)
        except Exception:
            skipped.append(name)
    path = state_path(home, learner)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pickle.dumps(kept))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return skipped

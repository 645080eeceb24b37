"""A child process that runs the tutor, watched from outside and killed with SIGKILL: the crash
tests (tests/test_recovery.py) and the recovery benchmark (bench/bench_recovery.py) share it.

    proc = subprocess.Popen([sys.executable, "child.py"], stderr=subprocess.PIPE)
    job_id, step = wait_for(lambda: job_row(home / "jobs.sqlite3", "id, step", "checkpoint IS NOT NULL"), proc)
    kill_9(proc)
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Callable


def job_row(db: Path, columns: str, where: str) -> tuple | None:
    """The first row of the jobs table the child writes, or None while the file, the table or
    such a row is not there yet."""
    if not db.is_file():
        return None
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute(f"SELECT {columns} FROM jobs WHERE {where}").fetchone()
    except sqlite3.OperationalError:  # the child is creating the table
        return None


def wait_for(check: Callable[[], Any], proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.02) -> Any:
    """check()'s first true value; RuntimeError (with the child's stderr) when the child exits
    first, and the child killed when it never gets there in `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if proc.poll() is not None:
            raise RuntimeError(f"the child exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
        time.sleep(poll)
    proc.kill()
    raise RuntimeError(f"the child never got there in {timeout:g} s")


def kill_9(proc: subprocess.Popen) -> float:
    """SIGKILL, then reap it (its pid is gone, as after a real crash); returns the time it died."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return time.perf_counter()

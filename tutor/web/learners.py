"""Who the learner is: a course login's signed header or cookie, else this browser's own random
id; and how many turns each learner may have running at once."""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import uuid
from typing import Any, Callable

import gradio as gr

LEARNER_HEADER, LEARNER_COOKIE = "X-Tutor-Learner", "tutor_learner"


def sign_learner(secret: str, learner_id: str) -> str:
    """What a course site sends to vouch for a learner: `ID.HMAC` (header X-Tutor-Learner or cookie
    tutor_learner). Only the course server, which knows the secret, can make one."""
    mac = hmac.new(secret.encode(), learner_id.encode(), hashlib.sha256).hexdigest()
    return f"{learner_id}.{mac}"


def verify_learner(secret: str, value: str | None) -> str | None:
    """The learner id inside a signed value, or None when it is missing or forged."""
    if not value or "." not in value:
        return None
    learner_id, _, mac = value.rpartition(".")
    good = hmac.new(secret.encode(), learner_id.encode(), hashlib.sha256).hexdigest()
    return learner_id if learner_id and hmac.compare_digest(mac, good) else None


def signed_learner(secret: str) -> Callable[[Any], str | None]:
    """A Gradio `auth_dependency`: the learner named by the course login, or None (refused, 401)."""
    def learner_of(request: Any) -> str | None:
        value = request.headers.get(LEARNER_HEADER) or request.cookies.get(LEARNER_COOKIE)
        return verify_learner(secret, value)
    return learner_of


def learner_id(browser_id: str | None, request: gr.Request | None) -> str:
    """The course login's learner when there is one; else this browser's own random id."""
    user = getattr(request, "username", None) if request is not None else None
    if user:
        return f"user:{user}"
    if browser_id and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", browser_id):  # never "user:..." (a login)
        return browser_id
    return uuid.uuid4().hex


class TurnSlots:
    """Per-learner count of running turns, so one learner cannot fill the server's queue."""

    def __init__(self, limit: int):
        self.limit, self.running, self.lock = limit, {}, threading.Lock()

    def start(self, learner: str) -> bool:
        with self.lock:
            if self.running.get(learner, 0) >= self.limit:
                return False
            self.running[learner] = self.running.get(learner, 0) + 1
            return True

    def end(self, learner: str) -> None:
        with self.lock:
            self.running[learner] -= 1

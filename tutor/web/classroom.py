"""What a class sharing one web server needs, in one object the web layer holds: who each request
acts for (learners.py), fair lanes for turns (tutor/lanes.py), whose uploads are whose
(uploads.py), and each learner's Stop flags. The page's handlers (turns.py, api.py) call these.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import chat
from ..lanes import LaneLimits, Lanes, message_lane
from ..tools import Reply
from . import learners
from .learners import SessionCookies, SessionKeys
from .uploads import Ledger, UploadGuard, inside

SWEEP_EVERY_S = 600


class Classroom:
    def __init__(self, tutor: Any, upload_root: Callable[[], Path]):
        s = tutor.settings
        self.tutor, self.upload_root = tutor, upload_root
        self.keys = SessionKeys.at(Path(s.home))
        self.secret = s.learner_secret.get_secret_value() if s.learner_secret is not None else None
        self.lanes = Lanes(LaneLimits.of(s))
        self.uploads = Ledger(int(s.upload_quota_mb * 2**20), int(s.upload_server_cap_mb * 2**20),
                              s.upload_max_age_hours * 3600)
        self.cancels: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    # ---- identity ----------------------------------------------------------------------------

    def learner(self, request: Any, token: str | None = None) -> str | None:
        """Who this request acts for (a course login, or the session the server issued); None
        when it carries neither."""
        return learners.request_learner(request, self.keys, self.secret, token)

    def caller(self, request: Any, token: str | None = None) -> tuple[str | None, str]:
        """(learner, token to send next time) for an API client: its own session, or a new one.
        With a course login the token is empty (the login names the learner each time); when the
        server has a secret and the call carries no valid login, (None, "")."""
        who = self.learner(request, token)
        if who is not None:
            if who.startswith("user:"):
                return who, ""
            return who, token if self.keys.learner(token) == who else _cookie(request)
        if self.secret is not None:
            return None, ""
        fresh = self.keys.issue()
        return self.keys.learner(fresh) or learners.anonymous(), fresh

    def shown(self, learner: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's messages with each figure as the page may fetch it: its learner's copy in
        Gradio's folder (the upload guard serves nothing else from there)."""
        root = self.upload_root()
        figures = (Path(self.tutor.settings.home) / "figures").resolve()  # where reply_messages writes them
        out = []
        for m in messages:
            path = m.get("content", {}).get("path") if isinstance(m.get("content"), dict) else None
            # only the server's own figures are copied: never a path from anywhere else
            if isinstance(path, str) and inside(path, figures) and Path(path).is_file():
                m = {**m, "content": {**m["content"], "path": self.uploads.show(learner, path, root)}}
            out.append(m)
        return out

    def install(self, fastapi_app: Any) -> None:
        """The middlewares: session cookies outermost, so the upload guard already sees one."""
        fastapi_app.add_middleware(UploadGuard, ledger=self.uploads, learner_of=self.learner,
                                   upload_root=self.upload_root)
        fastapi_app.add_middleware(SessionCookies, keys=self.keys)

    # ---- turns ------------------------------------------------------------------------------

    def respond(self, message: str, learner: str) -> Iterator[Reply]:
        """One turn in its lane, with a Stop flag only this learner's Stop sets."""
        self._maybe_sweep()
        cancel = threading.Event()
        with self._lock:
            self.cancels.setdefault(learner, set()).add(cancel)
        session = self.tutor.session(learner)
        try:
            yield from self.lanes.run(learner, message_lane(message, self.tutor),
                                      lambda: chat.respond(message, session, cancel), cancel)
        finally:
            with self._lock:
                mine = self.cancels.get(learner, set())
                mine.discard(cancel)
                if not mine:
                    self.cancels.pop(learner, None)

    def final(self, message: str, learner: str) -> Reply:
        last = Reply()
        for last in self.respond(message, learner):
            pass
        return last

    def stop(self, learner: str | None) -> int:
        """Set the Stop flag of every turn of this learner (and no one else's); how many."""
        with self._lock:
            flags = list(self.cancels.get(learner, ())) if learner else []
        for f in flags:
            f.set()
        return len(flags)

    def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept > SWEEP_EVERY_S:
            self._swept = now
            threading.Thread(target=self.uploads.sweep, args=(self.upload_root(),), daemon=True).start()


def _cookie(request: Any) -> str:
    return (getattr(request, "cookies", None) or {}).get(learners.SESSION_COOKIE, "")


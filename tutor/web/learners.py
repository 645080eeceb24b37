"""Who a web request acts for. The server decides; a client never names a learner itself.

Three kinds of identity, each a learner id the rest of the tutor uses as is:
- `user:NAME`: a course login vouched for NAME with a signed value `NAME.EXPIRY.MAC` in the
  X-Tutor-Learner header or the tutor_learner cookie (HMAC-SHA256 with TUTOR_LEARNER_SECRET over
  "NAME.EXPIRY"; refused once EXPIRY, a Unix time, has passed, so a captured value is not
  replayable forever).
- `web-ID`: a browser, or an API client that keeps the token it was given. The server hands out a
  random ID signed with its own session key (in the tutor_session cookie, and returned by /ask and
  /chat); a value it did not sign is ignored and a new ID issued.
- `anon-ID`: a caller with neither (e.g. a stateless MCP client): a fresh identity per call,
  never shared with another caller.

    >>> keys = SessionKeys(b"k" * 32)
    >>> token = keys.issue()
    >>> keys.learner(token).startswith("web-"), keys.learner("alice"), keys.learner(token + "x")
    (True, None, None)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Callable

LEARNER_HEADER, LEARNER_COOKIE = "X-Tutor-Learner", "tutor_learner"  # a course login's signed value
SESSION_COOKIE = "tutor_session"  # this server's own browser session token
SESSION_MAX_AGE_S = 30 * 24 * 3600
DEFAULT_TTL_S = 12 * 3600  # a signed login value is good for one teaching day
_NAME = re.compile(r"[A-Za-z0-9_@.+-]{1,64}")


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


# ---- a course login's signed value ---------------------------------------------------------------

def sign_learner(secret: str, learner_id: str, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
    """What a course site sends to vouch for a learner: `ID.EXPIRY.MAC`, valid for `ttl_s`
    seconds. Only the course server, which knows the secret, can make one."""
    if not _NAME.fullmatch(learner_id) or "." in learner_id:
        raise ValueError(f"learner id {learner_id!r}: use 1-64 letters, digits, _ @ + - (no dots)")
    expiry = int((time.time() if now is None else now) + ttl_s)
    return f"{learner_id}.{expiry}.{_mac(secret.encode(), f'{learner_id}.{expiry}')}"


def verify_learner(secret: str, value: str | None, now: float | None = None) -> str | None:
    """The learner id inside a signed value, or None when it is missing, forged or expired."""
    parts = (value or "").split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    learner_id, expiry, mac = parts
    good = _mac(secret.encode(), f"{learner_id}.{expiry}")
    if not (learner_id and hmac.compare_digest(mac, good)):
        return None
    return learner_id if int(expiry) > (time.time() if now is None else now) else None


def signed_learner(secret: str) -> Callable[[Any], str | None]:
    """A Gradio `auth_dependency`: the learner named by the course login, or None (refused, 401)."""
    def learner_of(request: Any) -> str | None:
        return verify_learner(secret, login_value(request))
    return learner_of


def login_value(request: Any) -> str | None:
    headers, cookies = getattr(request, "headers", None) or {}, getattr(request, "cookies", None) or {}
    # Starlette's headers ignore case; Gradio hands some handlers a plain dict with lower-case keys.
    return (headers.get(LEARNER_HEADER) or headers.get(LEARNER_HEADER.lower())
            or cookies.get(LEARNER_COOKIE))


# ---- this server's own session tokens ------------------------------------------------------------

class SessionKeys:
    """Issues and checks the random session tokens of browsers and API clients."""

    def __init__(self, key: bytes):
        self.key = key

    @classmethod
    def at(cls, home: Path) -> "SessionKeys":
        """The key kept in HOME/session.key (made once, readable by this user only), so sessions
        survive a restart of the server."""
        path = home / "session.key"
        if not path.is_file():
            home.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".session.key.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            os.replace(tmp, path)  # two processes starting at once: the last key written wins for both
        return cls(path.read_bytes())

    def issue(self) -> str:
        sid = secrets.token_hex(16)
        return f"{sid}.{_mac(self.key, 'session:' + sid)[:32]}"

    def learner(self, token: str | None) -> str | None:
        """`web-ID` for a token this server issued, else None."""
        sid, _, mac = (token or "").partition(".")
        if len(sid) != 32 or not hmac.compare_digest(mac, _mac(self.key, "session:" + sid)[:32]):
            return None
        return f"web-{sid}"


def anonymous() -> str:
    """A one-call identity for a caller that brought none."""
    return f"anon-{secrets.token_hex(16)}"


def request_learner(request: Any, keys: SessionKeys, secret: str | None, token: str | None = None) -> str | None:
    """The learner a request acts for: the course login's (when the server has a secret), else
    the session token the server issued (cookie, or `token` passed by an API client); None when
    the request carries neither."""
    user = getattr(request, "username", None)  # set by the site's login check (auth_dependency), never by the client
    if isinstance(user, str) and user:
        return f"user:{user}"
    if secret is not None:  # with a secret set, only a course login names a learner
        user = verify_learner(secret, login_value(request))
        return f"user:{user}" if user else None
    cookies = getattr(request, "cookies", None) or {}
    return keys.learner(token) or keys.learner(cookies.get(SESSION_COOKIE))


class SessionCookies:
    """ASGI middleware: every request carries a valid tutor_session cookie. A request without
    one (or with one this server did not sign) gets a new token, both in the request it passes
    on (so the handler already sees it) and in a Set-Cookie on the response."""

    def __init__(self, app: Any, keys: SessionKeys):
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from http.cookies import SimpleCookie
        headers = list(scope.get("headers") or [])
        jar: SimpleCookie = SimpleCookie()
        for name, value in headers:
            if name == b"cookie":
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is treated as none
                    pass
        held = jar.get(SESSION_COOKIE)
        if held is not None and self.keys.learner(held.value):
            return await self.app(scope, receive, send)
        token = self.keys.issue()
        others = [(n, v) for n, v in headers if n != b"cookie"]
        kept = "; ".join(f"{k}={m.value}" for k, m in jar.items() if k != SESSION_COOKIE)
        cookie = f"{SESSION_COOKIE}={token}" + (f"; {kept}" if kept else "")
        scope = {**scope, "headers": others + [(b"cookie", cookie.encode("latin-1"))]}
        set_cookie = (f"{SESSION_COOKIE}={token}; Path=/; Max-Age={SESSION_MAX_AGE_S}; HttpOnly; "
                      "SameSite=Lax").encode("latin-1")

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers") or []) + [(b"set-cookie", set_cookie)]}
            await send(message)
        await self.app(scope, receive, send_with_cookie)

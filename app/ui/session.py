"""Dashboard sessions: the API key is sent once (sign-in), the browser then holds only a
random session id in an HttpOnly, SameSite=Strict cookie (Secure behind TLS).

The key lives in this process's memory, never on disk or in the cookie; every page calls
the JSON API with it, so the API's own checks (revocation, expiry, visibility, quotas)
apply unchanged. Each session carries a CSRF token that every form posts back
(synchronizer token); the sign-in form, before a session exists, uses a double-submit
token in a short-lived cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request, Response
from pydantic_settings import BaseSettings, SettingsConfigDict

COOKIE = "srflow_session"
SIGNIN_COOKIE = "srflow_signin"
CSRF_FIELD = "csrf_token"


class UISettings(BaseSettings):
    """Dashboard settings; env ``SRFLOW_UI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SRFLOW_UI_", extra="ignore", frozen=True)

    trust_forwarded_proto: bool = False  # behind a TLS-terminating proxy that sets it
    secure_cookies: bool = False  # always mark cookies Secure
    session_idle_s: float = 8 * 3600.0
    session_max_s: float = 24 * 3600.0
    max_sessions: int = 10_000


@dataclass
class UISession:
    """One signed-in browser."""

    key: str = field(repr=False)
    user: str
    groups: tuple[str, ...]
    is_admin: bool
    csrf: str
    created: float
    seen: float


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """Sessions by the sha256 of their id (a memory dump shows no usable cookie)."""

    def __init__(self, settings: UISettings) -> None:
        self.settings = settings
        self._rows: dict[str, UISession] = {}
        self._lock = threading.Lock()

    def create(self, key: str, user: str, groups: tuple[str, ...],
               is_admin: bool) -> tuple[str, UISession]:
        sid = secrets.token_urlsafe(32)
        now = time.time()
        row = UISession(key=key, user=user, groups=groups, is_admin=is_admin,
                        csrf=secrets.token_urlsafe(32), created=now, seen=now)
        with self._lock:
            self._expire(now)
            if len(self._rows) >= self.settings.max_sessions:  # drop the oldest
                oldest = min(self._rows, key=lambda k: self._rows[k].seen)
                del self._rows[oldest]
            self._rows[_digest(sid)] = row
        return sid, row

    def get(self, sid: str | None) -> UISession | None:
        if not sid:
            return None
        now = time.time()
        with self._lock:
            row = self._rows.get(_digest(sid))
            if row is None:
                return None
            if (now - row.seen > self.settings.session_idle_s
                    or now - row.created > self.settings.session_max_s):
                del self._rows[_digest(sid)]
                return None
            row.seen = now
            return row

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._rows.pop(_digest(sid), None)

    def _expire(self, now: float) -> None:
        s = self.settings
        for k in [k for k, r in self._rows.items()
                  if now - r.seen > s.session_idle_s or now - r.created > s.session_max_s]:
            del self._rows[k]


def is_secure(request: Request, settings: UISettings) -> bool:
    """Behind TLS: https to us, or (when trusted) a proxy's ``X-Forwarded-Proto: https``."""
    if settings.secure_cookies or request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return settings.trust_forwarded_proto and forwarded == "https"


def set_cookie(response: Response, request: Request, settings: UISettings, name: str,
               value: str, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/ui", httponly=True,
                        samesite="strict", secure=is_secure(request, settings))


def clear_cookie(response: Response, request: Request, settings: UISettings, name: str) -> None:
    response.delete_cookie(name, path="/ui", httponly=True, samesite="strict",
                           secure=is_secure(request, settings))


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def same_origin(request: Request) -> bool:
    """A browser's ``Origin`` (when sent) must be this host: a second line behind the token."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == request.headers.get("host", "")

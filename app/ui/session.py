"""Dashboard sessions: the API key is sent once (sign-in), the browser then holds only a
random session id in an HttpOnly, SameSite=Strict cookie (Secure behind TLS).

Sessions live in the registry database (``ui_sessions``, migration 0005), so every API
process (``srflow serve --workers N``) serves every signed-in browser and a restart signs
nobody out. A row holds the SHA-256 of the session id, never the id; the API key is sealed
under a key derived from the id, so the database alone (a backup, a dump) opens neither a
session nor a key. Every page calls the JSON API with the unsealed key, so the API's own
checks (revocation, expiry, visibility, quotas) apply unchanged; a session also dies with
its key: a revoked or expired key ends it at the next page, a deleted key deletes it.
Sessions end after ``session_idle_s`` without a page view or ``session_max_s`` after
sign-in, and at sign-out (the row is deleted).

Each session has a CSRF token derived from its id that every form posts back
(synchronizer token); the sign-in form, before a session exists, uses a double-submit
token in a short-lived cookie of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import Request, Response
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import delete, func, select, update

from core.registry.db import session_factory
from core.registry.keys import Caller, hash_key
from core.registry.models import ApiKey, DashboardSession, utcnow

COOKIE = "srflow_session"
SIGNIN_COOKIE = "srflow_signin"
CSRF_FIELD = "csrf_token"
SEEN_EVERY_S = 60.0  # a page view refreshes the idle clock at most this often (one write)


class UISettings(BaseSettings):
    """Dashboard settings; env ``SRFLOW_UI_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SRFLOW_UI_", extra="ignore", frozen=True)

    trust_forwarded_proto: bool = False  # behind a TLS-terminating proxy that sets it
    secure_cookies: bool = False  # always mark cookies Secure
    session_idle_s: float = 8 * 3600.0
    session_max_s: float = 24 * 3600.0
    max_sessions: int = 10_000  # all users together; past it the longest idle ends


@dataclass
class UISession:
    """One signed-in browser."""

    key: str = field(repr=False)
    user: str
    groups: tuple[str, ...]
    is_admin: bool
    csrf: str
    created: datetime
    seen: datetime


def digest(sid: str) -> str:
    """What the database stores of a session id."""
    return hashlib.sha256(sid.encode()).hexdigest()


def csrf_token(sid: str) -> str:
    """The session's CSRF token: derived from the id, so nothing more is stored."""
    mac = hmac.new(sid.encode(), b"srflow-ui-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _pad(sid: str, n: int) -> bytes:
    """``n`` bytes of HMAC-SHA256 keystream under the session id (used for one key only:
    every session id is fresh)."""
    out = b""
    block = 0
    while len(out) < n:
        out += hmac.new(sid.encode(), b"srflow-ui-key|%d" % block, hashlib.sha256).digest()
        block += 1
    return out[:n]


def seal(sid: str, key: str) -> str:
    raw = key.encode()
    return base64.b64encode(bytes(a ^ b for a, b in zip(raw, _pad(sid, len(raw)),
                                                        strict=True))).decode()


def unseal(sid: str, sealed: str) -> str | None:
    try:
        raw = base64.b64decode(sealed.encode(), validate=True)
        return bytes(a ^ b for a, b in zip(raw, _pad(sid, len(raw)), strict=True)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


class SessionStore:
    """Sessions in the registry database, by the SHA-256 of their id. Blocking: call from a
    worker thread (app/ui/web.py does, once per request)."""

    def __init__(self, settings: UISettings, db_url: str) -> None:
        self.settings = settings
        self.db_url = db_url

    def _idle_since(self, now: datetime) -> datetime:
        """A row not seen since then is dead."""
        return now - timedelta(seconds=self.settings.session_idle_s)

    def create(self, key: str, caller: Caller) -> tuple[str, UISession] | None:
        """A new session for ``caller``'s ``key``; None when the key row is gone."""
        sid = secrets.token_urlsafe(32)
        now = utcnow()
        with session_factory(self.db_url)() as s:
            key_row = s.scalar(select(ApiKey).where(ApiKey.prefix == caller.prefix))
            if key_row is None or not hmac.compare_digest(key_row.key_hash, hash_key(key)):
                return None
            s.execute(delete(DashboardSession).where(
                (DashboardSession.expires_at <= now)
                | (DashboardSession.seen_time <= self._idle_since(now))))
            count = s.scalar(select(func.count()).select_from(DashboardSession)) or 0
            if count >= self.settings.max_sessions:  # end the longest idle
                oldest = select(DashboardSession.id_hash).order_by(
                    DashboardSession.seen_time).limit(count - self.settings.max_sessions + 1)
                s.execute(delete(DashboardSession).where(DashboardSession.id_hash.in_(oldest)))
            s.add(DashboardSession(
                id_hash=digest(sid), key_id=key_row.id, sealed_key=seal(sid, key),
                user=caller.user, groups=list(caller.groups), is_admin=caller.is_admin,
                create_time=now, seen_time=now,
                expires_at=now + timedelta(seconds=self.settings.session_max_s)))
            s.commit()
        return sid, UISession(key, caller.user, tuple(caller.groups), caller.is_admin,
                              csrf_token(sid), now, now)

    def get(self, sid: str | None) -> UISession | None:
        """The live session with this id, or None (unknown, ended, or its key revoked or
        expired: the row is deleted then)."""
        if not sid:
            return None
        now = utcnow()
        with session_factory(self.db_url)() as s:
            found = s.execute(select(DashboardSession, ApiKey).join(
                ApiKey, ApiKey.id == DashboardSession.key_id).where(
                DashboardSession.id_hash == digest(sid))).first()
            if found is None:
                return None
            row, key_row = found
            key = unseal(sid, row.sealed_key)
            if key is None or not hmac.compare_digest(key_row.key_hash, hash_key(key)):
                return None  # not this id's row (cannot happen short of a SHA-256 collision)
            if (row.expires_at <= now or row.seen_time <= self._idle_since(now)
                    or key_row.revoked_at is not None
                    or (key_row.expires_at is not None and key_row.expires_at <= now)):
                s.execute(delete(DashboardSession).where(DashboardSession.id_hash == row.id_hash))
                s.commit()
                return None
            if (now - row.seen_time).total_seconds() >= SEEN_EVERY_S:
                s.execute(update(DashboardSession).where(
                    DashboardSession.id_hash == row.id_hash).values(seen_time=now))
                s.commit()
            return UISession(key, row.user, tuple(row.groups or ()), row.is_admin,
                             csrf_token(sid), row.create_time, row.seen_time)

    def drop(self, sid: str | None) -> None:
        if sid:
            with session_factory(self.db_url)() as s:
                s.execute(delete(DashboardSession).where(DashboardSession.id_hash == digest(sid)))
                s.commit()


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

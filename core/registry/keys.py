"""API keys: ``srf_<prefix>_<secret>``; only SHA-256(key) is stored, compared in constant time.

The prefix (8 hex characters) is the key's visible handle: it finds the row and names
the key in listings and revocations without revealing the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.registry.models import ApiKey, utcnow

KEY_PREFIX = "srf_"
MIN_ADMIN_KEY_LENGTH = 24
MIN_ADMIN_KEY_BITS = 96.0  # a random 24-character token scores ~105; "hunter2" 20
NEW_KEY_HINT = ("python3 -c 'import secrets; print(\"srf_\" + secrets.token_hex(4) + \"_\" + "
                "secrets.token_urlsafe(32))'")
log = logging.getLogger("srflow.registry")


class WeakAdminKey(ValueError):
    """A configured admin key (``SRFLOW_ADMIN_KEY``) too short or too predictable to be
    one; the message is one line naming the setting and the fix."""


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once
    prefix: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Caller:
    """Who is calling: the user, their groups and whether they administer the service."""

    user: str
    groups: tuple[str, ...]
    is_admin: bool
    prefix: str

    @property
    def group(self) -> str:
        """The group new objects belong to (the first of the caller's groups)."""
        return self.groups[0] if self.groups else "default"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def estimated_bits(key: str) -> float:
    """A key's length times the Shannon entropy of its own character frequencies: 0 for
    ``aaaa…``, low for repeated words; an upper bound for anything guessable."""
    n = len(key)
    return -sum(c * math.log2(c / n) for c in Counter(key).values())


def weak_admin_key(key: str) -> str | None:
    """Why ``key`` may not be an admin key (one line naming SRFLOW_ADMIN_KEY and the fix),
    or None: at least MIN_ADMIN_KEY_LENGTH characters and MIN_ADMIN_KEY_BITS estimated."""
    bits = estimated_bits(key)
    if len(key) < MIN_ADMIN_KEY_LENGTH:
        why = f"it has {len(key)} characters, fewer than {MIN_ADMIN_KEY_LENGTH}"
    elif bits < MIN_ADMIN_KEY_BITS:
        why = (f"it is predictable: about {bits:.0f} bits by its character frequencies, "
               f"fewer than {MIN_ADMIN_KEY_BITS:.0f}")
    else:
        return None
    return (f"srflow: SRFLOW_ADMIN_KEY is too weak to be an admin key ({why}): set it to a "
            f"long random key, e.g. SRFLOW_ADMIN_KEY=$({NEW_KEY_HINT}), or unset it to get "
            "one written to <data_dir>/admin-key")


def split_prefix(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX) or len(key) < 14 or key[12] != "_":
        return None
    return key[4:12]


def create_key(
    session: Session,
    *,
    user: str = "admin",
    groups: list[str] | None = None,
    is_admin: bool = False,
    expires_at: datetime | None = None,
    key: str | None = None,
    issued_by: int | None = None,
) -> NewKey:
    """Store a new key (random unless ``key`` is given, e.g. ``SRFLOW_ADMIN_KEY``);
    ``issued_by``: the id of the key that asked for it (revoking that one revokes this)."""
    if key is None:
        key = f"{KEY_PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    prefix = split_prefix(key) or hash_key(key)[:8]
    session.add(
        ApiKey(
            prefix=prefix,
            key_hash=hash_key(key),
            user=user,
            groups=list(groups or ["default"]),
            is_admin=is_admin,
            expires_at=expires_at,
            issued_by=issued_by,
        )
    )
    session.flush()
    return NewKey(key, prefix, expires_at)


def ensure_key(session: Session, key: str, *, user: str = "admin") -> bool:
    """Make ``key`` an admin key if it is new (idempotent; used for ``SRFLOW_ADMIN_KEY``).
    A key that was revoked stays revoked (a restart must not undo a revocation): False
    then, True if the key works. A weak key (:func:`weak_admin_key`) is refused before
    anything is stored: WeakAdminKey."""
    if (weak := weak_admin_key(key)) is not None:
        raise WeakAdminKey(weak)
    prefix = split_prefix(key) or hash_key(key)[:8]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None:
        create_key(session, user=user, groups=["default"], is_admin=True, key=key)
        return True
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        raise ValueError(f"a different key with prefix {prefix} exists; choose another key")
    if row.revoked_at is not None:
        log.warning("SRFLOW_ADMIN_KEY %s was revoked and stays revoked: set a new key",
                    prefix)
        return False
    row.is_admin = True
    return True


def bootstrap_admin_key(db_url: str, key: str) -> bool:
    """:func:`ensure_key` in its own transaction, safe when several API processes start
    together: the one that loses the insert race (a unique-prefix violation — seen with
    two uvicorn workers on PostgreSQL, which then failed their start-up) retries and finds
    the winner's row."""
    from core.registry.db import session_scope

    for attempt in range(2):
        try:
            with session_scope(db_url) as s:
                return ensure_key(s, key)
        except IntegrityError:
            if attempt:
                raise
    return False


def authenticate(session: Session, key: str) -> Caller | None:
    """The caller for ``key``, or None (unknown, wrong, revoked or expired)."""
    prefix = split_prefix(key) or hash_key(key)[:8]
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    digest = hash_key(key)
    if row is None:
        hmac.compare_digest(digest, digest)  # same work either way
        return None
    if not hmac.compare_digest(row.key_hash, digest):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= utcnow()):
        return None
    return Caller(row.user, tuple(row.groups or ()), row.is_admin, row.prefix)


def any_key(session: Session) -> bool:
    return session.scalar(select(ApiKey.id).limit(1)) is not None

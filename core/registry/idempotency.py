"""``Idempotency-Key`` records (draft-ietf-httpapi-idempotency-key-header).

One record per (user, endpoint scope, key). :func:`begin` inserts it as ``processing``
before the request is handled; a second request with the same key then gets
:class:`InProgress` (409) until :func:`complete` stores the first answer, after which an
identical request gets that answer again (:class:`Replay`) and a different one
:class:`Mismatch` (422). A request that failed releases its key (:func:`release`), so a
corrected retry may reuse it. A record left ``processing`` by a crashed server is taken
over after ``stale_after`` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.registry.models import IdempotencyRecord, utcnow

PENDING_HASH = "-"


@dataclass(frozen=True)
class Started:
    """This request owns the key; handle it, then complete() or release()."""


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]
    request_hash: str  # of the first request (compare when begin() had no hash yet)


@dataclass(frozen=True)
class InProgress:
    """The first request with this key is still being processed (409)."""


@dataclass(frozen=True)
class Mismatch:
    """The key was used with a different request (422)."""


Outcome = Started | Replay | InProgress | Mismatch


def _decide(rec: IdempotencyRecord, request_hash: str | None) -> Outcome:
    if rec.state != "done":
        return InProgress()
    if request_hash is not None and rec.request_hash != request_hash:
        return Mismatch()
    return Replay(rec.status_code or 200, dict(rec.response or {}), rec.request_hash)


def begin(session: Session, owner: str, scope: str, key: str, request_hash: str | None,
          *, stale_after: float = 3600.0) -> Outcome:
    """Claim ``key``. ``request_hash`` may be None when the body is not read yet (uploads:
    call :func:`set_hash` once it is, then :func:`check` for an earlier answer)."""
    now = utcnow()
    rec = session.get(IdempotencyRecord, (owner, scope, key))
    if rec is not None:
        if rec.state == "processing" and rec.update_time < now - timedelta(seconds=stale_after):
            res = session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.owner == owner, IdempotencyRecord.scope == scope,
                       IdempotencyRecord.key == key,
                       IdempotencyRecord.update_time == rec.update_time)
                .values(update_time=now, request_hash=request_hash or PENDING_HASH)
                .execution_options(synchronize_session=False))
            session.commit()
            return Started() if res.rowcount == 1 else InProgress()  # type: ignore[attr-defined]
        return _decide(rec, request_hash)
    session.add(IdempotencyRecord(owner=owner, scope=scope, key=key,
                                  request_hash=request_hash or PENDING_HASH,
                                  state="processing", create_time=now, update_time=now))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        rec = session.get(IdempotencyRecord, (owner, scope, key))
        return InProgress() if rec is None else _decide(rec, request_hash)
    return Started()


def set_hash(session: Session, owner: str, scope: str, key: str, request_hash: str) -> None:
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.owner == owner, IdempotencyRecord.scope == scope,
               IdempotencyRecord.key == key)
        .values(request_hash=request_hash, update_time=utcnow())
        .execution_options(synchronize_session=False))
    session.commit()


def complete(session: Session, owner: str, scope: str, key: str, status_code: int,
             response: dict[str, Any]) -> None:
    """Store the answer (no commit: in the transaction that made the resource)."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.owner == owner, IdempotencyRecord.scope == scope,
               IdempotencyRecord.key == key)
        .values(state="done", status_code=status_code, response=response,
                update_time=utcnow())
        .execution_options(synchronize_session=False))


def release(session: Session, owner: str, scope: str, key: str) -> None:
    """Forget a key whose request failed (committed)."""
    session.rollback()
    session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.owner == owner, IdempotencyRecord.scope == scope,
               IdempotencyRecord.key == key, IdempotencyRecord.state == "processing")
        .execution_options(synchronize_session=False))
    session.commit()


def lookup(session: Session, owner: str, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(
        IdempotencyRecord.owner == owner, IdempotencyRecord.scope == scope,
        IdempotencyRecord.key == key))

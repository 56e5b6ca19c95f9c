"""Job rows: the source of truth for state, progress, cancellation and results.

Every state change that races with another process is one conditional UPDATE:
``claim`` (queued → running, or taking over a running job whose heartbeat went stale),
``finish`` (only the attempt that holds ``attempt_token`` and only while running), and
``request_cancel``. A duplicate delivery of the same task therefore leaves one result.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, true, update
from sqlalchemy.orm import Session

from core.registry.keys import Caller
from core.registry.models import Job, utcnow
from core.registry.redact import redact


def visible_to(model: Any, caller: Caller | None) -> ColumnElement[bool]:
    """Rows of ``model`` the caller may see (admin: all; else own, group-visible, public)."""
    if caller is None:
        return false()
    if caller.is_admin:
        return true()
    return or_(
        model.owner == caller.user,
        model.visibility == "public",
        and_(model.visibility == "group", model.group.in_(caller.groups)),
    )


def get_job(session: Session, job_id: str, caller: Caller | None = None) -> Job | None:
    stmt = select(Job).where(Job.id == job_id)
    if caller is not None:
        stmt = stmt.where(visible_to(Job, caller))
    return session.scalar(stmt)


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_page_token: str | None


def _encode_token(job: Job) -> str:
    raw = json.dumps([job.create_time.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    """(create_time, id) of the last job on the previous page; ValueError if malformed."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, job_id = json.loads(raw)
        return datetime.fromisoformat(when), str(job_id)
    except Exception as exc:
        raise ValueError("page_token is not one this server issued") from exc


def list_jobs(
    session: Session,
    caller: Caller,
    *,
    kind: str | None = None,
    state: str | None = None,
    page_size: int = 50,
    page_token: str | None = None,
) -> Page:
    """Newest first; the token is the opaque position (create_time, id) after the page."""
    stmt = select(Job).where(visible_to(Job, caller))
    if kind:
        stmt = stmt.where(Job.kind == kind)
    if state:
        stmt = stmt.where(Job.status == state)
    if page_token:
        when, job_id = decode_token(page_token)
        stmt = stmt.where(
            or_(Job.create_time < when, and_(Job.create_time == when, Job.id < job_id))
        )
    stmt = stmt.order_by(Job.create_time.desc(), Job.id.desc()).limit(page_size + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > page_size
    rows = rows[:page_size]
    return Page(rows, _encode_token(rows[-1]) if more and rows else None)


def claim(session: Session, job_id: str, token: str, worker: str, stale_after: float) -> bool:
    """Take the job for this attempt: queued → running, or a running job whose heartbeat
    is older than ``stale_after`` seconds (its worker died). True if this attempt owns it."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after)
    res = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.cancel_requested == false(),
            or_(Job.status == "queued", and_(Job.status == "running", Job.heartbeat_at < stale)),
        )
        .values(
            status="running",
            attempt_token=token,
            attempts=Job.attempts + 1,
            worker=worker,
            start_time=now,
            heartbeat_at=now,
            update_time=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return res.rowcount == 1  # type: ignore[attr-defined]


def _update_owned(session: Session, job_id: str, token: str, values: dict[str, Any]) -> bool:
    """The one conditional update: only the attempt holding ``token`` on a running job
    may write; False when another attempt took over or the job already ended."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempt_token == token, Job.status == "running")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount == 1  # type: ignore[attr-defined]


def heartbeat(session: Session, job_id: str, token: str, progress: dict[str, Any] | None) -> bool:
    """Write progress and the heartbeat; False if this attempt no longer owns the job."""
    now = utcnow()
    values: dict[str, Any] = {"heartbeat_at": now, "update_time": now}
    if progress is not None:
        values["progress"] = progress
    owned = _update_owned(session, job_id, token, values)
    session.commit()
    return owned


def requeue_owned(session: Session, job_id: str, token: str) -> bool:
    """Hand this attempt's running job back to the queue (checkpoint kept); False if it
    is no longer ours."""
    owned = _update_owned(session, job_id, token,
                          {"status": "queued", "attempt_token": None, "update_time": utcnow()})
    session.commit()
    return owned


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def finish(
    session: Session,
    job_id: str,
    token: str,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error_type: str | None = None,
    error_message: str | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    """Conditional final update (no commit: the caller registers outputs in the same
    transaction and commits). False if another attempt finished or took over."""
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "result": result,
        "error_type": error_type,
        "error_message": redact(error_message),  # the group reads it: no paths
        "end_time": now,
        "update_time": now,
    }
    if progress is not None:
        values["progress"] = progress
    return _update_owned(session, job_id, token, values)


def request_cancel(session: Session, job_id: str) -> None:
    """A queued job is cancelled at once; a running one is flagged and stops between
    steps (the worker then finishes it as cancelled). Finished jobs are left alone."""
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, end_time=now, update_time=now)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "running")
        .values(cancel_requested=True, update_time=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def reap_stale(session: Session, stale_after: float, max_attempts: int) -> list[Job]:
    """Running jobs whose heartbeat is older than ``stale_after`` s: back to queued (to be
    re-sent by the caller), or failed after ``max_attempts``. Returns the re-queued jobs."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after)
    rows = list(
        session.scalars(
            select(Job)
            .where(Job.status == "running", Job.heartbeat_at < stale)
            .execution_options(populate_existing=True)
        )
    )
    requeued: list[Job] = []
    for job in rows:
        values: dict[str, Any] = {"attempt_token": None, "update_time": now}
        if job.cancel_requested:
            values.update(status="cancelled", end_time=now)
        elif job.attempts >= max_attempts:
            values.update(
                status="failed",
                end_time=now,
                error_type="WorkerLost",
                error_message=(
                    f"the worker stopped sending heartbeats (no sign of life for "
                    f"{stale_after:.0f} s) on all {max_attempts} attempts; giving up. "
                    "Resubmit, or look at the worker logs for an out-of-memory kill."
                ),
            )
        else:
            values.update(status="queued")
        res = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running", Job.heartbeat_at < stale)
            .where(Job.attempt_token == job.attempt_token)  # a beat since the select wins
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1 and values["status"] == "queued":  # type: ignore[attr-defined]
            requeued.append(job)
    session.commit()
    return requeued


def find_idempotent(session: Session, owner: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.owner == owner, Job.idempotency_key == key))


def create_job(
    session: Session,
    *,
    job_id: str,
    kind: str,
    spec: dict[str, Any],
    queue: str,
    caller: Caller,
    visibility: str = "group",
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    model_name: str | None = None,
) -> Job:
    """Insert a queued job (committed before the task is sent, so a fast worker finds it)."""
    now = utcnow()
    job = Job(
        id=job_id,
        kind=kind,
        spec=spec,
        status="queued",
        queue=queue,
        progress={},
        owner=caller.user,
        group=caller.group,
        visibility=visibility,
        create_time=now,
        update_time=now,
        attempts=0,
        cancel_requested=False,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        model_name=model_name,
    )
    session.add(job)
    session.commit()
    return job


def finish_result(session: Session, job_id: str, result: dict[str, Any]) -> None:
    """Replace the result of a job this transaction just finished (e.g. with the version
    number assigned at registration); no commit."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(result=result)
        .execution_options(synchronize_session=False)
    )


def fail_unsent(session: Session, job_id: str, message: str) -> None:
    """The task could not be sent: the job fails at once with the broker's error."""
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(
            status="failed",
            error_type="BrokerUnavailable",
            error_message=f"the job could not be queued ({message}); resubmit later",
            end_time=now,
            update_time=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()

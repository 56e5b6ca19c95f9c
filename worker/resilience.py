"""What keeps a job alive through crashes: a heartbeat thread, a soft deadline that
checkpoints and re-queues, and pinning ``init_from: "nearest"`` to a concrete version.

- :class:`Heartbeat` writes ``jobs.heartbeat_at`` every ``heartbeat_interval_s`` from a
  daemon thread of the task's process, whether or not the job reports progress (start-up,
  thermalisation and evaluation report none). It dies with the process, so a SIGKILLed or
  OOM-killed worker stops beating and the reaper (``app.main``) re-queues the job after
  ``heartbeat_timeout_s``. A beat that finds the job no longer ours (re-queued, taken over)
  makes ``should_stop`` true.
- :class:`Deadline`: after ``soft_time_limit_s`` ``should_stop`` turns true; the trainer
  then writes its checkpoint and stops, and :func:`requeue` hands the job back to the
  queue, where the next attempt resumes from the checkpoint in the same work directory.
- :func:`fail_memory_risks`: a worker lost while running a job whose estimated memory is
  near a worker's (``oom_risk_fraction`` of ``worker_memory_bytes``) was almost surely
  killed for memory; re-running it would be killed again, so the job fails at once with
  a reason naming memory. Other lost jobs are re-queued up to ``max_attempts`` times
  (``core.registry.jobs.reap_stale``), then failed naming an out-of-memory kill.
- :func:`pin_init_from` turns ``"nearest"`` into ``"NAME/VERSION"`` once and stores it in
  the job's spec, so a resumed attempt starts from the same parent and the new version
  records it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import false, select, update
from sqlalchemy.orm import Session

from core.jobs.request import JobRequest
from core.registry import jobs, quotas
from core.registry.accounts import groups_of
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.registry.models import Job, utcnow
from core.registry.warmstart import NoParent, nearest_version
from core.settings import Settings

log = logging.getLogger("srflow.worker")
_request = TypeAdapter(JobRequest)


class Heartbeat:
    """A daemon thread beating for one attempt; ``lost`` once the job is not ours."""

    def __init__(self, settings: Settings, job_id: str, token: str) -> None:
        self.sessions = session_factory(settings.db_url)
        self.job_id, self.token = job_id, token
        self.period = settings.heartbeat_interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}",
                                        daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                with self.sessions() as s:
                    if not jobs.heartbeat(s, self.job_id, self.token, None):
                        self.lost = True
                        return
            except Exception:  # a busy database: try again next period
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Deadline:
    """``should_stop`` that also turns true after ``seconds`` (then ``preempted``: the job
    is re-queued) or after ``limit`` seconds (then ``timed_out``: the job fails)."""

    def __init__(self, inner: Callable[[], bool], seconds: float | None,
                 beat: Heartbeat | None = None, limit: float | None = None) -> None:
        self.inner, self.beat = inner, beat
        now = time.monotonic()
        self.until = None if seconds is None else now + seconds
        self.limit = None if limit is None else now + limit
        self.preempted = self.timed_out = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self.limit is not None and now >= self.limit:
            self.timed_out = True
            return True
        if self.until is not None and now >= self.until:
            self.preempted = True
            return True
        return bool(self.beat is not None and self.beat.lost) or self.inner()

    def urgent(self) -> bool:
        """True for the reasons to abandon work that writes no checkpoint (thermalisation,
        the final evaluation): cancel, a lost job, the wall-time limit — not the soft
        deadline, which waits for the trainer's next step, where a checkpoint is written
        (else a thermalisation longer than ``soft_time_limit_s`` would re-queue forever)."""
        if self.limit is not None and time.monotonic() >= self.limit:
            self.timed_out = True
            return True
        return bool(self.beat is not None and self.beat.lost) or self.inner()


def requeue(settings: Settings, job_id: str, token: str, send: Callable[[Job], Any]) -> str:
    """Give a running attempt's job back to the queue (conditional on still owning it) and
    send it again; the work directory (checkpoint) is kept."""
    with session_factory(settings.db_url)() as s:
        if not jobs.requeue_owned(s, job_id, token):
            return "superseded"
        job = jobs.get_job(s, job_id)
        assert job is not None
        send(job)
    log.warning("job %s reached soft_time_limit_s=%s: checkpointed and re-queued", job_id,
                settings.soft_time_limit_s)
    return "requeued"


def owner_caller(session: Any, job: Job) -> Caller:
    groups = groups_of(session, job.owner) or [job.group]
    return Caller(job.owner, tuple(groups), False, "")


def pin_init_from(settings: Settings, job_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with ``init_from: "nearest"`` replaced by the chosen ``NAME/VERSION``
    (stored in the job row). LookupError if no visible version fits."""
    if spec.get("init_from") != "nearest":
        return spec
    with session_factory(settings.db_url)() as s:
        job = jobs.get_job(s, job_id)
        assert job is not None
        try:
            mv = nearest_version(s, spec, owner_caller(s, job))
        except NoParent as exc:
            raise LookupError(str(exc)) from None
        pinned = {**spec, "init_from": f"{mv.model.name}/{mv.version}"}
        s.execute(update(Job).where(Job.id == job_id).values(spec=pinned)
                  .execution_options(synchronize_session=False))
        s.commit()
    log.info("job %s: init_from nearest → %s", job_id, pinned["init_from"])
    return pinned


def fail_memory_risks(session: Session, settings: Settings) -> list[str]:
    """Fail running jobs whose worker went silent (heartbeat older than
    ``heartbeat_timeout_s``) when their estimated memory is at least ``oom_risk_fraction``
    of ``worker_memory_bytes``, instead of re-running them into the same kill. Returns the
    ids failed; call before :func:`core.registry.jobs.reap_stale`, which re-queues the rest."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.heartbeat_timeout_s)
    risky = settings.oom_risk_fraction * settings.worker_memory_bytes
    failed: list[str] = []
    rows = session.scalars(select(Job).where(Job.status == "running", Job.heartbeat_at < stale,
                                             Job.cancel_requested == false()))
    for job in list(rows):
        try:
            req = _request.validate_python({"kind": job.kind, "spec": job.spec})
        except ValidationError:
            continue
        b = quotas.job_budget(session, job.kind, req.spec, owner_caller(session, job))
        if b is None or b.memory_bytes < risky:
            continue
        message = (
            f"the worker died while running this job (no heartbeat for "
            f"{settings.heartbeat_timeout_s:.0f} s, attempt {job.attempts}), most likely "
            f"killed for memory: the job's estimated peak memory is "
            f"{b.memory_bytes / quotas.GIB:.3g} GiB of a worker's "
            f"{settings.worker_memory_bytes / quotas.GIB:.3g} GiB. Not retried: reduce "
            f"{b.memory_field.removeprefix('spec.')} and resubmit."
        )
        res = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "running", Job.heartbeat_at < stale,
                   Job.attempt_token == job.attempt_token)  # a beat since the select wins
            .values(status="failed", end_time=now, update_time=now, attempt_token=None,
                    error_type="WorkerLost", error_message=message)
            .execution_options(synchronize_session=False)
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            failed.append(job.id)
            log.warning("job %s: worker lost near memory capacity; failed, not retried",
                        job.id)
    session.commit()
    return failed

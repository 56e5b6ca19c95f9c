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
- :func:`pin_init_from` turns ``"nearest"`` into ``"NAME/VERSION"`` once and stores it in
  the job's spec, so a resumed attempt starts from the same parent and the new version
  records it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from core.registry import jobs
from core.registry.accounts import groups_of
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.registry.models import Job
from core.registry.warmstart import NoParent, nearest_version
from core.settings import Settings

log = logging.getLogger("srflow.worker")


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
    """``should_stop`` that also turns true after ``seconds`` (then ``preempted``)."""

    def __init__(self, inner: Callable[[], bool], seconds: float | None,
                 beat: Heartbeat | None = None) -> None:
        self.inner, self.beat = inner, beat
        self.until = None if seconds is None else time.monotonic() + seconds
        self.preempted = False

    def __call__(self) -> bool:
        if self.until is not None and time.monotonic() >= self.until:
            self.preempted = True
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

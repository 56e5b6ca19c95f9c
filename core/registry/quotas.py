"""Per-group quotas and the job budget: jobs waiting or running, the lattice sites one job
generates, its estimated memory against a worker's, and its wall time.

Limits come from the group's row (``groups.max_queued_jobs``, ``groups.max_sample_volume``)
or, where that is null or the group has no row, from the server settings of the same name.
Memory (``worker_memory_bytes``) and wall time (``max_job_seconds``) are properties of the
workers, so they are server settings. Estimates are :func:`core.jobs.budgets.budget`'s.
The queued-jobs count is read before the new row is inserted, so concurrent submissions
may overshoot it by the number of requests in flight (a soft limit, like any rate limit).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.jobs.budgets import Budget, budget
from core.jobs.specs import SampleSpec
from core.registry import catalog
from core.registry.keys import Caller
from core.registry.models import Group, Job

GIB = 2**30


class QuotaExceeded(ValueError):
    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field = status, field


def limits(session: Session, settings: Any, group: str) -> tuple[int, int]:
    """(max_queued_jobs, max_sample_volume) for ``group``."""
    row = session.get(Group, group)
    queued = row.max_queued_jobs if row is not None and row.max_queued_jobs else None
    volume = row.max_sample_volume if row is not None and row.max_sample_volume else None
    return (queued or settings.max_queued_jobs, volume or settings.max_sample_volume)


def job_budget(session: Session, kind: str, spec: Any, caller: Caller | None) -> Budget | None:
    """The budget of a spec (a sample spec's model is resolved with ``caller``'s
    visibility; None for an unknown model or a spec that is not one)."""
    if spec is None:
        return None
    if kind == "sample" and isinstance(spec, SampleSpec):
        mv = catalog.resolve(session, spec.model, caller)
        if mv is None:
            return None
        return budget(spec, model_L=int(mv.L), model_dim=int(mv.dim))
    return budget(spec)


def check_time(settings: Any, spec: Any) -> None:
    cap = getattr(settings, "max_job_seconds", None)
    if cap is None:
        return
    # a scan's max_minutes is derived (per point × points): name the field the user set
    minutes_field = ("max_minutes_per_point" if hasattr(spec, "max_minutes_per_point")
                     else "max_minutes")
    for field, seconds in (("max_seconds", getattr(spec, "max_seconds", None)),
                           (minutes_field, 60 * (getattr(spec, "max_minutes", None) or 0))):
        if seconds and seconds > cap:
            what = "the scan's points together ask" if field == "max_minutes_per_point" else (
                f"{field} asks")
            raise QuotaExceeded(422, f"spec.{field}",
                                f"{what} for {seconds:.0f} s, more than this server's "
                                f"max_job_seconds={cap:.0f}: ask for less, or split the job")


def check_budget(settings: Any, group: str, b: Budget, max_volume: int) -> None:
    """422 naming the field when the estimate exceeds a worker's memory or the volume."""
    capacity = getattr(settings, "worker_memory_bytes", None)
    if capacity is not None and b.memory_bytes > capacity:
        raise QuotaExceeded(422, b.memory_field,
                            f"estimated memory {b.memory_bytes / GIB:.3g} GiB "
                            f"({b.memory_formula}) exceeds a worker's "
                            f"worker_memory_bytes={capacity} ({capacity / GIB:.3g} GiB): "
                            f"reduce {b.memory_field.removeprefix('spec.')}")
    if b.volume > max_volume:
        raise QuotaExceeded(422, b.volume_field,
                            f"lattice sites generated = {b.volume} exceeds group {group!r}'s "
                            f"quota max_sample_volume={max_volume}: reduce "
                            f"{b.volume_field.removeprefix('spec.')} or split the job")


def check(session: Session, settings: Any, caller: Caller, req: Any) -> None:
    """Raise QuotaExceeded (429 queued jobs; 422 memory, volume, time) naming the limit."""
    group = caller.group
    max_queued, max_volume = limits(session, settings, group)
    b = job_budget(session, req.kind, req.spec, caller)
    if req.spec is not None:
        check_time(settings, req.spec)
    if b is not None:
        check_budget(settings, group, b, max_volume)
    waiting = session.scalar(
        select(func.count()).select_from(Job)
        .where(Job.group == group, Job.status.in_(("queued", "running")))
    )
    if int(waiting or 0) >= max_queued:
        raise QuotaExceeded(429, "kind",
                            f"group {group!r} has {waiting} jobs queued or running, its quota "
                            f"max_queued_jobs={max_queued}: wait for some to finish")

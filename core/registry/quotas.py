"""Per-group quotas: jobs waiting or running, and the size n_samples × L^d of one job.

Limits come from the group's row (``groups.max_queued_jobs``, ``groups.max_sample_volume``)
or, where that is null or the group has no row, from the server settings of the same name.
The queued-jobs count is read before the new row is inserted, so concurrent submissions
may overshoot it by the number of requests in flight (a soft limit, like any rate limit).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.registry import catalog
from core.registry.keys import Caller
from core.registry.models import Group, Job


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


def sample_volume(session: Session, req: Any, caller: Caller) -> int | None:
    """n_samples × L^d of an hmc or sample request (None for train or an unknown model)."""
    spec = req.spec
    if req.kind == "hmc":
        return int(spec.n_samples) * int(spec.L) ** int(spec.dim)
    if req.kind == "sample":
        mv = catalog.resolve(session, spec.model, caller)
        if mv is None:
            return None
        return int(spec.n_samples) * int(mv.L) ** int(mv.dim)
    return None


def check(session: Session, settings: Any, caller: Caller, req: Any) -> None:
    """Raise QuotaExceeded (429 queued jobs; 422 volume) naming the limit."""
    group = caller.group
    max_queued, max_volume = limits(session, settings, group)
    volume = sample_volume(session, req, caller)
    if volume is not None and volume > max_volume:
        raise QuotaExceeded(422, "spec.n_samples",
                            f"n_samples × L^d = {volume} exceeds group {group!r}'s quota "
                            f"max_sample_volume={max_volume}: ask for fewer samples per job")
    waiting = session.scalar(
        select(func.count()).select_from(Job)
        .where(Job.group == group, Job.status.in_(("queued", "running")))
    )
    if int(waiting or 0) >= max_queued:
        raise QuotaExceeded(429, "kind",
                            f"group {group!r} has {waiting} jobs queued or running, its quota "
                            f"max_queued_jobs={max_queued}: wait for some to finish")

"""What a running job and its caller exchange (no torch).

A job runner (core.jobs.run.run_job and the kind-specific runners) reports through a
:data:`ProgressFn` that receives :class:`ProgressReport` values, asks a :data:`StopFn`
between steps, and returns a :class:`JobResult` or raises :class:`JobCancelled` /
:class:`JobError`. The CLI's progress bars, the Celery worker's database updates and the
scan's per-point relay are all callers of this one contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProgressReport:
    """A progress report: ``step`` of ``total`` in ``stage``, with figures such as
    ``ess``, ``acceptance``, ``loss`` and ``eta_seconds`` in ``metrics``."""

    step: int
    total: int | None
    stage: str
    metrics: dict[str, float] = field(default_factory=dict)


class JobCancelled(Exception):
    """Raised when ``should_stop()`` turned true; nothing was registered."""


class JobError(ValueError):
    """A job that cannot run as specified (device, model reference, ...); one-line message."""


@dataclass(frozen=True)
class JobResult:
    """What a job produced. ``summary`` is what ``srflow <kind> --json`` prints."""

    kind: str
    summary: dict[str, Any]
    ensemble: Path | None = None
    model_dir: Path | None = None


ProgressFn = Callable[[ProgressReport], None]
StopFn = Callable[[], bool]

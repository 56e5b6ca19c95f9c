"""What every job runner shares at run time: the device a spec names, and the bridge from
the physics library's progress hooks to :class:`~core.jobs.protocol.ProgressReport`."""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from core.jobs.protocol import JobError, ProgressFn, ProgressReport
from core.physics.control import ProgressHook


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; a clear error when CUDA is asked for and absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise JobError("device=cuda is not available on this machine: use --device cpu")
    if name not in ("cpu", "cuda"):
        raise JobError(f"device={name!r} is unknown: use cpu or cuda")
    return torch.device(name)


def eta_seconds(start: float, done: int, total: int) -> float:
    rate = done / max(time.perf_counter() - start, 1e-9)
    return (total - done) / rate if rate > 0 else math.inf


def progress_hook(progress: ProgressFn | None, stage: str) -> ProgressHook:
    """Bridge the library's ``(done, total, info)`` callbacks to :class:`ProgressReport`."""
    start = time.perf_counter()

    def report(done: int, total: int, info: dict[str, Any]) -> None:
        if progress is None:
            return
        metrics = {k: float(v) for k, v in info.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        metrics["eta_seconds"] = eta_seconds(start, done, total) if total else math.inf
        label = str(info.get("stage", info.get("phase", stage)))
        progress(ProgressReport(done, total, label, metrics))

    return report



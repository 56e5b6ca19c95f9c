"""How an attempt ends: the conditional final update of a job row, and the small pieces
every way of ending shares (JSON-safe results, the cancel flag, the time-limit error).

Used by worker.runner (plain jobs) and worker.scan_outputs (scans).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from core.registry import jobs
from core.registry.db import session_factory
from core.settings import Settings


def clean_json(value: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, tuples → lists, unknown objects → str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "item"):
        return clean_json(value.item())
    return str(value)


def time_limit_error(settings: Settings) -> tuple[str, str]:
    return ("TimeLimitExceeded",
            f"the job ran longer than this server's max_job_seconds="
            f"{settings.max_job_seconds:.0f}: set spec.max_seconds (hmc) or spec.max_minutes "
            "(train) to end early with what was computed, or split the job")


def finish_plain(
    settings: Settings,
    job_id: str,
    token: str,
    state: str,
    progress: dict[str, Any],
    cleanup: Path | None,
    error: tuple[str, str] | None = None,
) -> str:
    with session_factory(settings.db_url)() as s:
        ok = jobs.finish(
            s,
            job_id,
            token,
            state,
            progress=progress or None,
            error_type=error[0] if error else None,
            error_message=error[1] if error else None,
        )
        s.commit()
    if cleanup is not None and ok:  # a superseded attempt leaves the new one's checkpoint
        shutil.rmtree(cleanup, ignore_errors=True)
    return state if ok else "superseded"


def cancel_requested(settings: Settings, job_id: str) -> bool:
    with session_factory(settings.db_url)() as s:
        return jobs.cancel_requested(s, job_id)



"""Job rows as AIP-151 long-running operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.registry.models import FINAL_STATES, Job
from core.registry.redact import redact

# google.rpc.Code values used in Operation.error
CODE = {"failed": 13, "cancelled": 1}


class OperationError(BaseModel):
    code: int = Field(description="google.rpc.Code: 1 CANCELLED, 13 INTERNAL (job failed)")
    message: str
    details: list[dict[str, Any]] = []


class Operation(BaseModel):
    """AIP-151: ``done`` is true once the job ended; then exactly one of error/response."""

    name: str = Field(description="jobs/{id}; the id is also the Celery task id")
    done: bool
    metadata: dict[str, Any]
    error: OperationError | None = None
    response: dict[str, Any] | None = None


class OperationList(BaseModel):
    operations: list[Operation]
    next_page_token: str | None = None


def _t(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def to_operation(job: Job) -> Operation:
    done = job.status in FINAL_STATES
    meta = {
        "@type": "srflow.v1.JobMetadata",
        "state": job.status,
        "kind": job.kind,
        "spec": job.spec,
        "progress": job.progress or {},
        "create_time": _t(job.create_time),
        "start_time": _t(job.start_time),
        "update_time": _t(job.update_time),
        "end_time": _t(job.end_time),
        "heartbeat_time": _t(job.heartbeat_at),
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "queue": job.queue,
        "owner": job.owner,
        "group": job.group,
        "visibility": job.visibility,
    }
    if job.model_name:
        meta["model_name"] = job.model_name
    op = Operation(name=f"jobs/{job.id}", done=done, metadata=meta)
    if job.status == "succeeded":
        op.response = {"@type": "srflow.v1.JobResult", **(job.result or {})}
    elif job.status == "failed":
        op.error = OperationError(
            code=CODE["failed"],
            message=redact(job.error_message) or "the job failed",  # rows from before
            details=[{"type": job.error_type or "Error"}],
        )
    elif job.status == "cancelled":
        op.error = OperationError(code=CODE["cancelled"], message="the job was cancelled")
    return op

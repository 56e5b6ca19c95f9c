"""Job rows as AIP-151 long-running operations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from core.registry import catalog
from core.registry.keys import Caller
from core.registry.models import FINAL_STATES, Job
from core.registry.redact import redact, redact_paths

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


def rfc3339(value: datetime | None) -> str | None:
    """A timestamp as RFC 3339 in UTC with a Z (``2026-12-07T05:47:22Z``), or None."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def to_operation(job: Job) -> Operation:
    done = job.status in FINAL_STATES
    meta = {
        "@type": "srflow.v1.JobMetadata",
        "state": job.status,
        "kind": job.kind,
        "spec": job.spec,
        "progress": job.progress or {},
        "create_time": rfc3339(job.create_time),
        "start_time": rfc3339(job.start_time),
        "update_time": rfc3339(job.update_time),
        "end_time": rfc3339(job.end_time),
        "heartbeat_time": rfc3339(job.heartbeat_at),
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
        op.response = {"@type": "srflow.v1.JobResult", **with_links(job.result or {})}
    elif job.status == "failed":
        op.error = OperationError(
            code=CODE["failed"],
            message=redact(job.error_message) or "the job failed",  # rows from before
            details=[{"type": job.error_type or "Error"}],
        )
    elif job.status == "cancelled":
        op.error = OperationError(code=CODE["cancelled"], message="the job was cancelled")
    return op


def model_link(name: str, version: int) -> dict[str, Any]:
    """A model version as a finished job or an ensemble names it: reference and URL."""
    return {"name": name, "version": version, "ref": f"{name}/{version}",
            "url": f"/v1/models/{name}/versions/{version}"}


# What a caller who cannot see a model version is told in its place (docs/sharing.md);
# name and version stay as keys (None) so clients that read them do not break.
REDACTED_MODEL: dict[str, Any] = {"name": None, "version": None, "redacted": True}


def with_links(result: dict[str, Any]) -> dict[str, Any]:
    """A job's result with the URLs of its outputs: ``ensemble.url`` (metadata),
    ``ensemble.download`` (HDF5) and ``model.ref`` / ``model.url``."""
    out = dict(result)
    ens = out.get("ensemble")
    ensemble_id = None
    if isinstance(ens, dict) and ens.get("id"):
        ensemble_id = str(ens["id"])
        out["ensemble"] = {**ens, "url": f"/v1/ensembles/{ens['id']}",
                           "download": f"/v1/ensembles/{ens['id']}/download"}
    model = out.get("model")
    model_ref = None
    if isinstance(model, dict) and model.get("name") and model.get("version") is not None:
        out["model"] = {**model, **model_link(str(model["name"]), int(model["version"]))}
        model_ref = out["model"]["ref"]
    if isinstance(out.get("summary"), dict):
        out["summary"] = public_summary(out["summary"], ensemble_id, model_ref)
    return out


def public_summary(summary: dict[str, Any], ensemble_id: str | None,
                   model_ref: str | None) -> dict[str, Any]:
    """A job's or an ensemble's summary without server paths: the jobs name their outputs
    by work path (``out``: the ensemble file, ``model``: the flow's directory), which
    become the registry's references (the ensemble id, ``NAME/VERSION``); any other
    absolute path in it (an error text) is shortened to ``.../NAME``."""
    shown: dict[str, Any] = redact_paths(summary)
    if "out" in shown:
        shown["out"] = ensemble_id
    if isinstance(shown.get("model"), str):
        shown["model"] = model_ref
    return shown


def redact_sources(op: Operation, session: Any, caller: Caller) -> Operation:
    """The operation as ``caller`` may see it: a model version the caller cannot see (a
    sample job's source, a train job's output whose visibility was narrowed) is replaced
    by ``REDACTED_MODEL``, and so is a sample spec's ``model`` reference; the ensemble's
    ``sha256``/``size`` then read null (that caller downloads a copy without the model's
    name: GET /v1/ensembles/{id} gives its digest). The job's owner and admins see it
    unredacted."""
    if caller.is_admin or op.metadata.get("owner") == caller.user:
        return op
    model = (op.response or {}).get("model")
    if isinstance(model, dict) and model.get("name") and model.get("version") is not None:
        if catalog.get_version(session, str(model["name"]), int(model["version"]),
                               caller) is None:
            op.response = {**(op.response or {}), "model": REDACTED_MODEL}
            summary = op.response.get("summary")
            if isinstance(summary, dict) and isinstance(summary.get("model"), str):
                op.response["summary"] = {**summary, "model": None}
            ens = op.response.get("ensemble")
            if isinstance(ens, dict):  # this caller downloads a copy without the model's
                op.response["ensemble"] = {**ens, "sha256": None, "size": None}  # name
    spec = op.metadata.get("spec")
    if op.metadata.get("kind") == "sample" and isinstance(spec, dict) and spec.get("model"):
        if catalog.resolve(session, str(spec["model"]), caller) is None:
            op.metadata = {**op.metadata, "spec": {**spec, "model": REDACTED_MODEL}}
    summary = (op.response or {}).get("summary")
    if op.metadata.get("kind") == "scan" and isinstance(summary, dict):
        op.response = {**(op.response or {}),
                       "summary": redact_scan_record(summary, session, caller, None)}
    return op


def redact_scan_record(record: dict[str, Any], session: Any, caller: Caller,
                       owner: str | None) -> dict[str, Any]:
    """A scan record as ``caller`` may see it: each point's ``model`` (a registry
    reference) the caller cannot resolve becomes ``REDACTED_MODEL``, each ``ensemble`` id
    the caller cannot see becomes None — a scan's points are registered like any train and
    sample job's outputs, and their visibility may since have been narrowed. The scan's
    owner (``owner``; None: already checked) and admins see the record unredacted."""
    if caller.is_admin or (owner is not None and owner == caller.user):
        return record
    points = record.get("points")
    if not isinstance(points, list):
        return record
    out = []
    for point in points:
        if isinstance(point, dict):
            point = dict(point)
            ref, ens = point.get("model"), point.get("ensemble")
            if isinstance(ref, str) and catalog.resolve(session, ref, caller) is None:
                point["model"] = REDACTED_MODEL
            if isinstance(ens, str) and catalog.get_ensemble(session, ens, caller) is None:
                point["ensemble"] = None
        out.append(point)
    return {**record, "points": out}

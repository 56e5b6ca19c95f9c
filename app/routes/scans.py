"""Scan jobs' outputs: the scan record and its fig. 4 plot.

``GET /v1/jobs/{id}/scan`` answers for a scan in any final state — a cancelled scan's
operation carries only the error, but the points it finished are registered and listed
here. ``GET /v1/jobs/{id}/plot`` is the PNG (ESS/N and κ_L − κ, ⟨|M|⟩ and χ against κ).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.deps import CallerDep, SessionDep, SettingsDep
from app.operations import redact_scan_record
from app.problems import Problem
from app.ranges import serve_blob
from app.responses import binary
from core.registry import jobs as rows
from core.registry.models import Job
from core.registry.store import ArtifactStore

router = APIRouter(tags=["jobs"])


def _scan(session: Any, job_id: str, caller: Any) -> Job:
    job = rows.get_job(session, job_id, caller)
    if job is None:
        raise Problem(404, f"no job {job_id!r}: check the id (GET /v1/jobs lists yours)",
                      slug="job-not-found")
    if job.kind != "scan":
        raise Problem(404, f"job {job_id!r} is a {job.kind} job, not a scan: only scans have "
                      "a scan record and a plot", slug="not-a-scan")
    return job


@router.get("/jobs/{job_id}/scan", summary="A scan's record: its finished points")
def get_scan(job_id: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    """``{"state", "points": [{kappa, lam, ess, couplings, acceptance, observables, model,
    ensemble, ...}], "plot", ...}``; 409 while the scan runs (progress: the job's events).
    A point's model or ensemble the caller may not see is redacted (``redact_scan_record``)."""
    job = _scan(session, job_id, caller)
    if job.result is None:
        raise Problem(409, f"scan {job_id!r} is {job.status}: its record is written when it "
                      "ends (follow GET /v1/jobs/{id}/events)", slug="scan-not-finished")
    record = redact_scan_record(job.result.get("summary") or {}, session, caller, job.owner)
    return {"state": job.status, **record, "plot_artifact": job.result.get("plot")}


@router.get("/jobs/{job_id}/plot", summary="A scan's fig. 4 (PNG)", response_class=Response,
            responses={200: binary("image/png", "the plot"),
                       206: binary("image/png", "the requested byte range"),
                       304: {"description": "Not modified (If-None-Match)"}})
def get_plot(job_id: str, request: Request, session: SessionDep, caller: CallerDep,
             settings: SettingsDep) -> Response:
    job = _scan(session, job_id, caller)
    plot = (job.result or {}).get("plot")
    if not isinstance(plot, dict) or not plot.get("sha256"):
        raise Problem(404, f"scan {job_id!r} has no plot ({job.status}; a scan stopped before "
                      "its first point has none)", slug="no-plot")
    path = ArtifactStore(settings.artifacts_dir).path(str(plot["sha256"]))
    if not path.is_file():
        raise Problem(500, f"scan {job_id!r}: its plot is missing from the artifact store; "
                      "tell the admin")
    return serve_blob(request, path, str(plot["sha256"]), "image/png", f"scan-{job_id}.png")

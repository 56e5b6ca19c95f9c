"""Jobs: the list (live progress over the API's event stream), one job, cancel."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.ui.forms import read_form
from app.ui.proxy import proxy
from app.ui.web import api_error_page, check_csrf, current, redirect, render

router = APIRouter()
STATES = ("queued", "running", "succeeded", "failed", "cancelled")
KINDS = ("hmc", "train", "sample")
LIVE_LIMIT = 6  # event streams one list page opens (the API allows 8 per user)


def job_view(op: dict[str, Any]) -> dict[str, Any]:
    """The figures a row or a job page shows, from an AIP-151 operation."""
    meta = op.get("metadata") or {}
    prog = meta.get("progress") or {}
    resp = op.get("response") or {}
    step, total = prog.get("step"), prog.get("total")
    return {
        "id": str(op.get("name", "")).removeprefix("jobs/"),
        "done": bool(op.get("done")),
        "state": meta.get("state"), "kind": meta.get("kind"), "spec": meta.get("spec") or {},
        "owner": meta.get("owner"), "group": meta.get("group"),
        "visibility": meta.get("visibility"), "model_name": meta.get("model_name"),
        "create_time": meta.get("create_time"), "end_time": meta.get("end_time"),
        "cancel_requested": meta.get("cancel_requested"),
        "step": step, "total": total, "stage": prog.get("stage"),
        "ess": prog.get("ess"), "kappa_L": prog.get("coarse_kappa"),
        "eta": prog.get("eta_seconds"),
        "fraction": (step / total) if isinstance(step, int | float) and total else None,
        "summary": resp.get("summary") or {},
        "ensemble": resp.get("ensemble"), "model": _visible(resp.get("model")),
        "model_redacted": _redacted(resp.get("model")) or _redacted(
            (meta.get("spec") or {}).get("model")),
        "error": (op.get("error") or {}).get("message"),
        "model_ref": _model_ref(meta),
    }


def _redacted(model: Any) -> bool:
    """The API names a model version only to callers who can see it (docs/sharing.md)."""
    return isinstance(model, dict) and bool(model.get("redacted"))


def _visible(model: Any) -> dict[str, Any] | None:
    return None if not isinstance(model, dict) or _redacted(model) else model


def _model_ref(meta: dict[str, Any]) -> dict[str, str] | None:
    """A sample job's model (``NAME``, ``NAME/VERSION``, ``NAME@ALIAS``) and its page."""
    ref = (meta.get("spec") or {}).get("model") if meta.get("kind") == "sample" else None
    if not isinstance(ref, str) or not ref:
        return None
    return {"ref": ref, "name": re.split(r"[/@]", ref, maxsplit=1)[0]}


@router.get("/ui/jobs", include_in_schema=False)
async def jobs_page(request: Request, kind: str = "", state: str = "",
                    page_token: str = "") -> Response:
    ctx = current(request)
    r = await ctx.api.get("/v1/jobs", kind=kind if kind in KINDS else None,
                          state=state if state in STATES else None,
                          page_token=page_token or None, page_size=50)
    if r.status != 200:
        return api_error_page(ctx, r, "jobs")
    data = r.json()
    jobs = [job_view(op) for op in data["operations"]]
    live = [j["id"] for j in jobs if not j["done"]][:LIVE_LIMIT]
    return render(request, "jobs.html", ctx, title="Jobs · srflow", jobs=jobs, live=live,
                  kinds=KINDS, states=STATES, kind=kind, state=state,
                  next_page_token=data.get("next_page_token"))


@router.get("/ui/jobs/{job_id}", include_in_schema=False)
async def job_page(request: Request, job_id: str) -> Response:
    ctx = current(request)
    r = await ctx.api.get(f"/v1/jobs/{job_id}")
    if r.status != 200:
        return api_error_page(ctx, r, "job")
    job = job_view(r.json())
    version: dict[str, Any] | None = None
    if job["model"]:
        m = job["model"]
        vr = await ctx.api.get(f"/v1/models/{m['name']}/versions/{m['version']}")
        version = vr.json() if vr.status == 200 else None
    return render(request, "job.html", ctx, title=f"Job {job_id[:8]} · srflow", job=job,
                  version=version)


@router.post("/ui/jobs/{job_id}/cancel", include_in_schema=False)
async def cancel(request: Request, job_id: str) -> Response:
    ctx = current(request)
    form = await read_form(request)
    check_csrf(request, form, ctx.session.csrf)
    r = await ctx.api.call("POST", f"/v1/jobs/{job_id}:cancel")
    if r.status != 200:
        return api_error_page(ctx, r, "cancel")
    return redirect(f"/ui/jobs/{job_id}")


@router.get("/ui/jobs/{job_id}/events", include_in_schema=False)
async def events(request: Request, job_id: str) -> Response:
    """The API's own ``/v1/jobs/{id}/events`` (progress, done), for a cookie-holding page."""
    ctx = current(request)
    return await proxy(ctx, f"/v1/jobs/{job_id}/events", "job events")

"""Submit forms for hmc, train and sample jobs. Each rendered form carries a fresh
Idempotency-Key: a double click (or a resent form) creates one job, the API's rule."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.ui.forms import (
    FORMS,
    KINDS,
    field_errors,
    job_body,
    new_idempotency_key,
    read_form,
    valid_idempotency_key,
)
from app.ui.web import Ctx, check_csrf, current, redirect, render

router = APIRouter()
IN_FLIGHT_WAIT_S = 30.0  # a second click waits this long for the first to be answered


def _page(ctx: Ctx, kind: str, values: dict[str, str], errors: dict[str, str],
          other: list[str], key: str, status: int = 200,
          models: list[str] | None = None) -> Response:
    return render(ctx.request, "submit.html", ctx, status=status,
                  title=f"Submit {kind} · srflow", kind=kind, kinds=KINDS, fields=FORMS[kind],
                  values=values, errors=errors, other=other, idempotency_key=key,
                  models=models or [])


async def _model_refs(ctx: Ctx) -> list[str]:
    r = await ctx.api.get("/v1/models")
    if r.status != 200:
        return []
    return [v["ref"] for v in r.json().get("model_versions", [])][:200]


@router.get("/ui/submit", include_in_schema=False)
def submit_home() -> Response:
    return redirect("/ui/submit/hmc")


@router.get("/ui/submit/{kind}", include_in_schema=False)
async def submit_form(request: Request, kind: str) -> Response:
    ctx = current(request)
    if kind not in KINDS:
        return redirect("/ui/submit/hmc")
    values = {f.name: f.default for f in FORMS[kind]}
    if kind == "sample" and request.query_params.get("model"):
        values["spec.model"] = request.query_params["model"]
    models = await _model_refs(ctx) if kind == "sample" else None
    return _page(ctx, kind, values, {}, [], new_idempotency_key(), models=models)


async def _post_job(ctx: Ctx, body: dict[str, Any], key: str) -> Any:
    """POST /v1/jobs; while the first request with this key is still in flight (409) wait
    for it, then get the replay of its answer."""
    deadline = asyncio.get_running_loop().time() + IN_FLIGHT_WAIT_S
    while True:
        r = await ctx.api.call("POST", "/v1/jobs", body=body, headers={"idempotency-key": key})
        if r.status != 409 or asyncio.get_running_loop().time() > deadline:
            return r
        await asyncio.sleep(0.1)


@router.post("/ui/submit/{kind}", include_in_schema=False)
async def submit(request: Request, kind: str) -> Response:
    ctx = current(request)
    form = await read_form(request)
    check_csrf(request, form, ctx.session.csrf)
    if kind not in KINDS:
        return redirect("/ui/submit/hmc")
    key = form.get("idempotency_key", "")
    values = {f.name: form.get(f.name, "") for f in FORMS[kind]}
    if not valid_idempotency_key(key):
        return _page(ctx, kind, values, {}, ["the form lost its idempotency key: reload it"],
                     new_idempotency_key(), status=400)
    r = await _post_job(ctx, job_body(kind, form), key)
    if r.status == 202:
        return redirect(f"/ui/jobs/{str(r.json()['name']).removeprefix('jobs/')}")
    doc = r.problem
    by_field, other = field_errors(kind, doc.get("errors") or [])
    if not by_field and not other:
        other = [str(doc.get("detail") or f"the API answered {r.status}")]
    if any(e.get("field") == "Idempotency-Key" for e in doc.get("errors") or []):
        other = ["this form was already used for another job: check the values and submit "
                 "again to create a new one"]
        key = new_idempotency_key()  # a new job was asked for on purpose
    models = await _model_refs(ctx) if kind == "sample" else None
    return _page(ctx, kind, values, by_field, other, key, status=r.status, models=models)

"""Models: search, the coupling map, a model's card, versions and aliases (curators move
them), its training curve and downloads."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.ui import charts
from app.ui.forms import read_form
from app.ui.proxy import proxy
from app.ui.web import SECURITY_HEADERS, api_error_page, check_csrf, current, redirect, render

router = APIRouter()
SEARCH = ("dim", "L", "kappa_min", "kappa_max", "lam_min", "lam_max", "method", "min_ess")
SEARCH_LABELS = {"dim": "Dimension d", "L": "Lattice size L", "kappa_min": "κ from",
                 "kappa_max": "κ to", "lam_min": "λ from", "lam_max": "λ to",
                 "method": "Method", "min_ess": "Minimum ESS/N"}
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def _query(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in SEARCH}


def svg(data: bytes) -> Response:
    return Response(data, media_type="image/svg+xml",
                    headers={**SECURITY_HEADERS, "Cache-Control": "private, max-age=60"})


@router.get("/ui/models", include_in_schema=False)
async def models_page(request: Request) -> Response:
    ctx = current(request)
    q = _query(request)
    r = await ctx.api.get("/v1/models", **q)
    if r.status == 422:  # a search field the API refused: show it next to the field
        errors = {e["field"]: e["message"] for e in r.problem.get("errors") or []}
        return render(request, "models.html", ctx, status=422, title="Models · srflow", q=q,
                      labels=SEARCH_LABELS, versions=[], errors=errors, map_query="")
    if r.status != 200:
        return api_error_page(ctx, r, "models")
    versions = r.json()["model_versions"]
    map_query = request.url.query
    return render(request, "models.html", ctx, title="Models · srflow", q=q,
                  labels=SEARCH_LABELS, versions=versions, errors={}, map_query=map_query)


@router.get("/ui/coupling-map.svg", include_in_schema=False)
async def coupling_map(request: Request) -> Response:
    ctx = current(request)
    r = await ctx.api.get("/v1/models", **_query(request))
    versions = r.json()["model_versions"] if r.status == 200 else []
    return svg(await run_in_threadpool(charts.coupling_map, versions))


async def _model(request: Request, name: str, **extra: Any) -> Response:
    ctx = current(request)
    r = await ctx.api.get(f"/v1/models/{name}")
    if r.status != 200:
        return api_error_page(ctx, r, "model")
    model = r.json()
    versions = sorted(model["versions"], key=lambda v: -v["version"])
    return render(request, "model.html", ctx, title=f"{name} · srflow", model=model,
                  versions=versions, **extra)


@router.get("/ui/models/{name}", include_in_schema=False)
async def model_page(request: Request, name: str) -> Response:
    return await _model(request, name, alias_error=None)


@router.post("/ui/models/{name}/aliases", include_in_schema=False)
async def move_alias(request: Request, name: str) -> Response:
    """``PUT /v1/models/{name}/aliases/{alias}``: the API says who may (403 otherwise)."""
    ctx = current(request)
    form = await read_form(request)
    check_csrf(request, form, ctx.session.csrf)
    alias, version = form.get("alias", "").strip(), form.get("version", "").strip()
    if not _ALIAS.match(alias):
        return await _model(request, name, alias_error="alias: letters, digits, '.', '_', "
                            "'-', starting with a letter")
    if not version.isdigit():
        return await _model(request, name, alias_error="version: choose a version")
    r = await ctx.api.call("PUT", f"/v1/models/{name}/aliases/{alias}",
                           body={"version": int(version)})
    if r.status == 404:
        return api_error_page(ctx, r, "model")
    if r.status != 200:
        return await _model(request, name, alias_error=str(r.problem.get("detail")))
    return redirect(f"/ui/models/{name}#aliases")


@router.get("/ui/models/{name}/versions/{version}/curve.svg", include_in_schema=False)
async def curve(request: Request, name: str, version: int) -> Response:
    ctx = current(request)
    r = await ctx.api.get(f"/v1/models/{name}/versions/{version}")
    if r.status != 200:
        return api_error_page(ctx, r, "model version")
    return svg(await run_in_threadpool(charts.training_curve, r.json().get("curve") or []))


@router.get("/ui/models/{name}/versions/{version}/download", include_in_schema=False)
async def download(request: Request, name: str, version: int) -> Response:
    ctx = current(request)
    return await proxy(ctx, f"/v1/models/{name}/versions/{version}/download", "model download")

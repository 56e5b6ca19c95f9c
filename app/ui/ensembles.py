"""Ensembles: observables, the free energy, the magnetisation histogram, acceptance,
download (sha256) and the pyerrors export."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.ui import charts
from app.ui.models import svg
from app.ui.proxy import proxy
from app.ui.web import api_error_page, current, render
from core.registry.store import ArtifactStore

router = APIRouter()
MAX_HIST_CONFIGS = 20_000  # read at most this many configurations for the histogram
CHUNK = 1024


def magnetisation(path: Path, limit: int = MAX_HIST_CONFIGS) -> tuple[np.ndarray, int]:
    """M = V⁻¹ Σ_x φ_x of the first ``limit`` configurations, read in chunks, and N."""
    with h5py.File(path, "r") as f:
        ds = f["configs"]
        n = int(ds.shape[0])
        out = [np.asarray(ds[i:min(i + CHUNK, n, limit)], dtype=np.float64)
               .reshape(-1, int(np.prod(ds.shape[1:]))).mean(axis=1)
               for i in range(0, min(n, limit), CHUNK)]
    return (np.concatenate(out) if out else np.zeros(0)), n


@router.get("/ui/ensembles/{ensemble_id}", include_in_schema=False)
async def ensemble_page(request: Request, ensemble_id: str) -> Response:
    ctx = current(request)
    r = await ctx.api.get(f"/v1/ensembles/{ensemble_id}")
    if r.status != 200:
        return api_error_page(ctx, r, "ensemble")
    ens = r.json()
    return render(request, "ensemble.html", ctx, title=f"Ensemble {ensemble_id[:8]} · srflow",
                  ens=ens, summary=ens.get("summary") or {},
                  observables=ens.get("observables") or {})


@router.get("/ui/ensembles/{ensemble_id}/magnetisation.svg", include_in_schema=False)
async def histogram(request: Request, ensemble_id: str) -> Response:
    ctx = current(request)
    r = await ctx.api.get(f"/v1/ensembles/{ensemble_id}")  # the visibility check
    if r.status != 200:
        return api_error_page(ctx, r, "ensemble")
    store = ArtifactStore(request.app.state.settings.artifacts_dir)
    path = store.path(r.json()["sha256"])
    if not path.is_file():
        return svg(await run_in_threadpool(charts.message_chart, "magnetisation",
                                           "the ensemble file is missing from the store"))
    m, n = await run_in_threadpool(magnetisation, path)
    return svg(await run_in_threadpool(charts.magnetisation_histogram, m, n))


@router.get("/ui/ensembles/{ensemble_id}/download", include_in_schema=False)
async def download(request: Request, ensemble_id: str) -> Response:
    ctx = current(request)
    return await proxy(ctx, f"/v1/ensembles/{ensemble_id}/download", "ensemble download")


@router.get("/ui/ensembles/{ensemble_id}/pyerrors", include_in_schema=False)
async def pyerrors_export(request: Request, ensemble_id: str) -> Response:
    ctx = current(request)
    return await proxy(ctx, f"/v1/ensembles/{ensemble_id}/pyerrors", "pyerrors export")

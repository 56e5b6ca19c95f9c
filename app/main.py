"""The srflow HTTP API (FastAPI). Never imports torch: jobs go to workers by task name.

Run: ``uvicorn --factory app.main:create_app`` (``srflow serve`` does this for you).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from app import metrics, problems, shedding
from app.body_limit import BodyLimitMiddleware
from app.problems import problem_responses
from app.routes import admin, ensembles, health, jobs, models, scans, sharing, uploads
from app.throttle import AuthThrottleMiddleware
from core import __version__
from core.registry import jobs as job_rows
from core.registry.db import session_factory, upgrade
from core.registry.keys import bootstrap_admin_key, weak_admin_key
from core.settings import Settings, get_settings
from worker.celery_app import TASK_NAME, make_celery
from worker.resilience import fail_memory_risks

log = logging.getLogger("srflow.api")


def _reap_once(app: FastAPI) -> None:
    """Re-send running jobs whose heartbeat went stale (a worker died)."""
    settings: Settings = app.state.settings
    with session_factory(settings.db_url)() as s:
        fail_memory_risks(s, settings)  # an OOM kill would recur: fail, naming memory
        for job in job_rows.reap_stale(s, settings.heartbeat_timeout_s, settings.max_attempts):
            log.warning("job %s lost its worker; re-queued (attempt %d)", job.id, job.attempts)
            app.state.celery.send_task(TASK_NAME, args=[job.id], queue=job.queue)


async def _reaper(app: FastAPI) -> None:
    period = max(app.state.settings.heartbeat_timeout_s / 4, 1.0)
    while True:
        await asyncio.sleep(period)
        try:
            await run_in_threadpool(_reap_once, app)
        except Exception:  # keep reaping; the next round may succeed
            log.exception("reaper round failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    shedding.size_threads(settings.api_threads)  # requests queue for the pool, not threads
    await run_in_threadpool(upgrade, settings.db_url)
    if settings.admin_key is not None:
        await run_in_threadpool(bootstrap_admin_key, settings.db_url,
                                settings.admin_key.get_secret_value())
    task = asyncio.create_task(_reaper(app))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API. A weak ``SRFLOW_ADMIN_KEY`` stops it here, with one line saying why and
    how to make a strong one (SystemExit: uvicorn prints it and exits)."""
    settings = settings or get_settings()
    if settings.admin_key is not None:
        weak = weak_admin_key(settings.admin_key.get_secret_value())
        if weak is not None:
            raise SystemExit(weak)
    app = FastAPI(
        title="srflow",
        version=__version__,
        summary="Exact sampling of lattice φ⁴ theory with super-resolving flows, as a service",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.celery = make_celery(settings)
    problems.install(app)
    shedding.install(app)  # 503 + Retry-After when the database pool is exhausted
    # bodies are bounded before any route (or key check) reads them, and an address that
    # failed too often is answered before its body is read; metrics, installed after,
    # wraps everything and times these answers too
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AuthThrottleMiddleware, burst=settings.auth_failures_burst,
                       per_minute=settings.auth_failures_per_minute)
    metrics.install(app, settings)  # GET /metrics (Prometheus, no key)
    for module in (health, jobs, scans, models, uploads, ensembles, sharing, admin):
        app.include_router(module.router, prefix="/v1", responses=problem_responses())
    from app import ui  # the dashboard at /ui: pages over this same API

    ui.install(app)
    return app

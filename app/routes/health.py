"""/v1/health: no key needed, but without one only ``status`` ("ok" | "degraded").

A valid key adds the version, the database dialect, the broker transport and the number
of live workers; an admin key adds the raw error texts and the workers' host names, which
would tell an outsider about the deployment."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app.deps import CeleryDep, OptionalCallerDep, SettingsDep
from core import __version__
from core.registry.db import engine_for
from core.settings import Settings

router = APIRouter(tags=["health"])


def _database(settings: Settings) -> dict[str, Any]:
    try:
        with engine_for(settings.db_url).connect() as c:
            c.execute(text("SELECT 1"))
        return {"ok": True, "dialect": engine_for(settings.db_url).dialect.name}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _broker_and_workers(settings: Settings, celery: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    if settings.embedded:
        beats = []
        for f in sorted((settings.root / "workers").glob("*.json")):
            try:
                beats.append(json.loads(f.read_text()))
            except (OSError, ValueError):
                continue
        alive = [b for b in beats if time.time() - b.get("time", 0) < 30]
        broker = {"ok": settings.broker_dir.is_dir(), "transport": "filesystem"}
        return broker, {"ok": bool(alive), "count": len(alive),
                        "names": [b.get("hostname") for b in alive]}
    try:
        with celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        broker = {"ok": True, "transport": celery.conf.broker_url.split("://")[0]}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, {"ok": False, "count": 0}
    try:
        replies = celery.control.inspect(timeout=1.0).ping() or {}
    except Exception:
        replies = {}
    return broker, {"ok": bool(replies), "count": len(replies), "names": sorted(replies)}


def _public(part: dict[str, Any]) -> dict[str, Any]:
    """A component's status without error texts or host names (non-admin callers)."""
    return {k: v for k, v in part.items() if k not in ("error", "names")}


@router.get("/health", summary="Service health (no key needed; details with a key)")
async def health(request: Request, settings: SettingsDep, celery: CeleryDep,
                 caller: OptionalCallerDep) -> dict[str, Any]:
    now = time.monotonic()
    cached = getattr(request.app.state, "health_workers", None)  # per app, not per process
    if cached is None or now - cached[0] > 5.0:
        cached = (now, await run_in_threadpool(_broker_and_workers, settings, celery))
        request.app.state.health_workers = cached
    broker, workers = cached[1]
    database = await run_in_threadpool(_database, settings)
    ok = bool(database["ok"] and broker["ok"])
    status = "ok" if ok else "degraded"
    if caller is None:
        return {"status": status}
    if not caller.is_admin:
        database, broker, workers = _public(database), _public(broker), _public(workers)
    return {"status": status, "version": __version__, "embedded": settings.embedded,
            "database": database, "broker": broker, "workers": workers}

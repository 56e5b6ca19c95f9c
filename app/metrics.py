"""Prometheus ``GET /metrics`` (no key): request latency, jobs, queues, workers, trainings.

Series (all prefixed ``srflow_``):

- ``http_request_duration_seconds{method, route, status}``: a histogram per route
  *template* (``/v1/jobs/{job_id}``; ``<unmatched>`` for paths no route knows) and HTTP
  method (``other`` for any other method string), so random URLs and methods cannot blow
  up the label set. For ``…/events`` it is the stream's lifetime.
- ``jobs{kind, state}``: job rows in the registry.
- ``queue_depth{queue}``: messages waiting in the broker's ``cpu``/``gpu`` queue
  (Redis: the list lengths; embedded: the filesystem transport's message files).
- ``workers_alive``, ``worker_heartbeat_age_seconds{stat="min"|"max"}``: the workers'
  liveness files (``<data_dir>/workers/*.json``, written every 10 s by each worker).
- ``running_job_heartbeat_age_seconds``: the stalest running job's heartbeat (the reaper
  re-queues it past ``heartbeat_timeout_s``).
- ``running_trainings{method}``, ``training_ess_per_n{method, stat="min"|"mean"|"max"}``:
  the latest ESS/N of running train jobs, aggregated per method.

Nothing private: no job ids, owners, groups, model names or host names appear in a label
(the scrape needs no key); counts are service-wide aggregates.

Several uvicorn workers: the request histogram lives in each process, so with
``--workers N`` set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory (wiped before each
start): prometheus-client's multiprocess mode then sums every process's files at scrape
time. Everything else is *collected from the registry at scrape time* (cached
``CACHE_S`` seconds per process), so it is the same whichever process answers and needs
no multiprocess bookkeeping.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.registry.db import session_factory
from core.registry.models import JOB_STATES, Job
from core.settings import Settings

CACHE_S = 2.0  # an unauthenticated scrape costs at most one registry query per this
ALIVE_S = 30.0  # a worker whose liveness file is older is presumed gone (as /v1/health)
QUEUES = ("cpu", "gpu")
KINDS = ("hmc", "train", "sample")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
UNMATCHED = "<unmatched>"
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
OTHER = "other"


class LatencyMiddleware:
    """Pure ASGI (a streaming response passes through untouched): times each HTTP request
    and labels it with the route template FastAPI matched."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app, self.histogram = app, histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started is answered 500
        t0 = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.histogram.labels(method_label(scope), route_template(scope),
                                  str(status)).observe(time.perf_counter() - t0)


def method_label(scope: Scope) -> str:
    """The request method if it is one of HTTP's, else ``other``: the method is whatever
    string a client sends, and each label value is a series for as long as the process
    lives (/metrics answers without a key)."""
    method = str(scope.get("method", ""))
    return method if method in METHODS else OTHER


def route_template(scope: Scope) -> str:
    """The matched route's full template, e.g. ``/v1/jobs/{job_id}``. FastAPI leaves the
    router-local route (``/jobs/{job_id}``) in the scope; the include prefix is what the
    path has before the locally rendered part."""
    route = scope.get("route")
    local = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not local:
        return UNMATCHED
    try:
        rendered = local.format(**{k: str(v) for k, v in scope.get("path_params", {}).items()})
    except (KeyError, IndexError, ValueError):
        return str(local)
    path = str(scope.get("path", ""))
    return path[: len(path) - len(rendered)] + local if path.endswith(rendered) else str(local)


@dataclass
class Snapshot:
    """What the registry, the broker and the workers' files said at one scrape."""

    jobs: Counter[tuple[str, str]] = field(default_factory=Counter)
    queues: dict[str, float] = field(default_factory=dict)
    worker_ages: list[float] = field(default_factory=list)
    stalest_running_s: float = 0.0
    ess: dict[str, list[float]] = field(default_factory=dict)


def _queue_depths(settings: Settings) -> dict[str, float]:
    if settings.embedded:
        names = [p.name for p in (settings.broker_dir / "queue").glob("*.msg")]
        return {q: float(sum(n.endswith(f".{q}.msg") for n in names)) for q in QUEUES}
    url = settings.celery_broker_url
    if not url.startswith(("redis://", "rediss://")):
        return {}
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        out = {}
        for q in QUEUES:  # kombu keeps priorities 3, 6, 9 in lists "q\x06\x16<p>"
            keys = [q] + [f"{q}\x06\x16{p}" for p in (3, 6, 9)]
            pipe = client.pipeline()
            for k in keys:
                pipe.llen(k)
            out[q] = float(sum(pipe.execute()))
        return out
    finally:
        client.close()


def _worker_ages(settings: Settings, now: float) -> list[float]:
    ages = []
    for f in (settings.root / "workers").glob("*.json"):
        try:
            ages.append(max(0.0, now - float(json.loads(f.read_text()).get("time", 0.0))))
        except (OSError, ValueError, TypeError):
            continue
    return ages


def take_snapshot(settings: Settings) -> Snapshot:
    snap = Snapshot()
    now = time.time()
    with session_factory(settings.db_url)() as s:
        for kind, state, n in s.execute(
                select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)):
            snap.jobs[(str(kind), str(state))] = int(n)
        oldest = s.scalar(select(func.min(Job.heartbeat_at)).where(Job.status == "running"))
        if oldest is not None:
            snap.stalest_running_s = max(0.0, now - oldest.timestamp())
        for spec, progress in s.execute(select(Job.spec, Job.progress).where(
                Job.kind == "train", Job.status == "running")):
            method = str((spec or {}).get("method", "unknown"))
            if method not in ("ir", "uv", "baseline"):
                method = "other"  # a label from a closed set, never free text
            ess = (progress or {}).get("ess")
            snap.ess.setdefault(method, [])
            if isinstance(ess, int | float) and ess == ess:
                snap.ess[method].append(float(ess))
    try:
        snap.queues = _queue_depths(settings)
    except Exception:  # broker down: no queue series rather than a failed scrape
        snap.queues = {}
    snap.worker_ages = _worker_ages(settings, now)
    return snap


class RegistryCollector(Collector):
    """Gauges collected at scrape time from a cached :class:`Snapshot`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.cached: tuple[float, Snapshot] | None = None

    def snapshot(self) -> Snapshot:
        with self.lock:
            now = time.monotonic()
            if self.cached is None or now - self.cached[0] > CACHE_S:
                self.cached = (now, take_snapshot(self.settings))
            return self.cached[1]

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        jobs = GaugeMetricFamily("srflow_jobs", "Job rows in the registry by kind and state",
                                 labels=["kind", "state"])
        for kind in sorted(set(KINDS) | {k for k, _ in snap.jobs}):
            for state in JOB_STATES:
                jobs.add_metric([kind, state], snap.jobs.get((kind, state), 0))
        yield jobs
        depth = GaugeMetricFamily("srflow_queue_depth", "Messages waiting in the broker queue",
                                  labels=["queue"])
        for q, n in sorted(snap.queues.items()):
            depth.add_metric([q], n)
        yield depth
        alive = sum(a < ALIVE_S for a in snap.worker_ages)
        yield GaugeMetricFamily("srflow_workers_alive", "Workers whose liveness file is "
                                f"younger than {ALIVE_S:.0f} s", value=alive)
        age = GaugeMetricFamily("srflow_worker_heartbeat_age_seconds",
                                "Age of the workers' liveness files", labels=["stat"])
        if snap.worker_ages:
            age.add_metric(["min"], min(snap.worker_ages))
            age.add_metric(["max"], max(snap.worker_ages))
        yield age
        yield GaugeMetricFamily("srflow_running_job_heartbeat_age_seconds",
                                "Age of the stalest running job's heartbeat (0: none running)",
                                value=snap.stalest_running_s)
        running = GaugeMetricFamily("srflow_running_trainings", "Running train jobs",
                                    labels=["method"])
        ess = GaugeMetricFamily("srflow_training_ess_per_n", "Latest ESS/N of running train "
                                "jobs, aggregated per method", labels=["method", "stat"])
        for method, values in sorted(snap.ess.items()):
            running.add_metric([method], len(values))
            if values:
                ess.add_metric([method, "min"], min(values))
                ess.add_metric([method, "mean"], statistics.fmean(values))
                ess.add_metric([method, "max"], max(values))
        yield running
        yield ess


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def install(app: FastAPI, settings: Settings) -> None:
    """Add the latency middleware and ``GET /metrics`` (not in the OpenAPI schema)."""
    registry = CollectorRegistry(auto_describe=False)
    histogram = Histogram("srflow_http_request_duration_seconds",
                          "HTTP request latency by route template and status",
                          ["method", "route", "status"], buckets=BUCKETS,
                          registry=None if multiprocess() else registry)
    if multiprocess():
        MultiProcessCollector(registry)
    registry.register(RegistryCollector(settings))
    app.add_middleware(LatencyMiddleware, histogram=histogram)

    async def metrics() -> Response:
        body: Any = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)

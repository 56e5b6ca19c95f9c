"""The bad inputs, the registry check and the summary table of ``bench/load.py``."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from core.registry.db import session_factory, session_scope
from core.registry.keys import create_key
from core.registry.models import FINAL_STATES, Job


@dataclass(frozen=True)
class Outcome:
    """One request: the client's route label, the status (None: transport error), the
    latency in seconds, and what was wrong with it (None: as expected)."""

    route: str
    status: int | None
    seconds: float
    error: str | None


@dataclass(frozen=True)
class Bad:
    """A deliberately wrong request and the 4xx it must get (always problem+json)."""

    name: str
    method: str
    path: str  # {job}, {ens} filled in
    expect: tuple[int, ...]
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def url(self, job: str, ens: str) -> str:
        return self.path.format(job=job, ens=ens)

    def content(self) -> bytes | None:
        return self.raw if self.raw is not None else (
            None if self.body is None else json.dumps(self.body).encode())


_JSON = {"content-type": "application/json"}
_T = {"dim": 2, "kappa": 0.2, "lam": 0.01, "n_samples": 16}
BAD = (  # POSTs may also meet the per-key rate limit: 429 is a fine answer too
    Bad("body not JSON", "POST", "/v1/jobs", (400, 422, 429), raw=b"{not json", headers=_JSON),
    Bad("flow L=24", "POST", "/v1/jobs", (422, 429),  # flows need L = 4·2^n
        {"kind": "train", "spec": {"method": "ir", "dim": 2, "L": 24, "kappa": 0.2,
                                   "lam": 0.01, "steps": 5}}, headers=_JSON),
    Bad("lam<0", "POST", "/v1/jobs", (422, 429),
        {"kind": "hmc", "spec": {**_T, "L": 8, "lam": -1}}, headers=_JSON),
    Bad("unknown kind", "POST", "/v1/jobs", (422, 429), {"kind": "mcmc", "spec": {}},
        headers=_JSON),
    Bad("n_samples too big", "POST", "/v1/jobs", (422, 429),
        {"kind": "hmc", "spec": {**_T, "L": 8, "n_samples": 10**9}}, headers=_JSON),
    Bad("state=bogus", "GET", "/v1/jobs?state=bogus", (422,)),
    Bad("bad page_token", "GET", "/v1/jobs?page_token=not-a-token", (422,)),
    Bad("page_size=0", "GET", "/v1/jobs?page_size=0", (422,)),
    Bad("no such job", "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000", (404,)),
    Bad("Range past end", "GET", "/v1/ensembles/{ens}/download", (416,),
        headers={"Range": "bytes=999999999-"}),
    Bad("revoked/unknown key", "GET", "/v1/jobs", (401,),
        headers={"Authorization": "Bearer srf_deadbeef_not-a-key"}),
    Bad("no such model", "GET", "/v1/models/no-such-model-xyz", (404,)),
)


class Registry:
    """Direct access to the deployment's registry (the benchmark owns the deployment)."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url

    def make_keys(self, n: int) -> list[str]:
        """Users load0..load{n-1}, alternately in groups load-a and load-b."""
        with session_scope(self.db_url) as s:
            return [create_key(s, user=f"load{i}", groups=[f"load-{'ab'[i % 2]}"]).key
                    for i in range(n)]

    def seed_ensembles(self, url: str, admin_key: str, keys: list[str], spec: dict[str, Any],
                       timeout: float) -> list[str]:
        """One finished HMC job per key (its ensemble id is its job id)."""
        ids = []
        for key in keys:
            r = httpx.post(f"{url}/v1/jobs", json={"kind": "hmc", "spec": spec}, timeout=60,
                           headers={"Authorization": f"Bearer {key}"})
            r.raise_for_status()
            ids.append(r.json()["name"].removeprefix("jobs/"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {j.status for j in self.jobs() if j.id in ids}
            if states == {"succeeded"}:
                return ids
            if states & {"failed", "cancelled"}:
                break
            time.sleep(0.5)
        rows = [(j.id, j.status, j.error_message) for j in self.jobs()]
        raise RuntimeError(f"seed jobs did not succeed: {rows}")

    def jobs(self) -> list[Job]:
        with session_factory(self.db_url)() as s:
            return list(s.scalars(select(Job)))


@dataclass
class RegistryCheck:
    acked_keys: int
    acked_jobs: int
    lost: list[str]  # acknowledged (202) but not in the registry
    duplicate_acks: list[str]  # keys answered with two different jobs
    duplicate_rows: list[str]  # keys with two registry rows
    unacked_created: int  # rows whose submission the client never saw answered
    states: dict[str, int]
    failed: list[str]
    drain_seconds: float


def check_registry(reg: Registry, acked: dict[tuple[int, str], set[str]], seeds: set[str],
                   drain_s: float) -> RegistryCheck:
    t0 = time.monotonic()
    while True:
        rows = [j for j in reg.jobs() if j.owner.startswith("load") and j.id not in seeds]
        if all(j.status in FINAL_STATES for j in rows) or time.monotonic() - t0 > drain_s:
            break
        time.sleep(1.0)
    by_key: dict[tuple[str, str | None], list[Job]] = defaultdict(list)
    for j in rows:
        by_key[(j.owner, j.idempotency_key)].append(j)
    ids = {j.id for j in rows}
    acked_ids = set().union(*acked.values()) if acked else set()
    sent = {(f"load{u}", k) for u, k in acked}
    return RegistryCheck(
        acked_keys=len(acked), acked_jobs=len(acked_ids),
        lost=sorted(acked_ids - ids),
        duplicate_acks=sorted(k for (_, k), v in acked.items() if len(v) > 1),
        duplicate_rows=sorted(str(k) for k, v in by_key.items() if len(v) > 1),
        unacked_created=sum(1 for k in by_key if k not in sent),
        states=dict(Counter(j.status for j in rows)),
        failed=[f"{j.id}: {j.error_type}: {j.error_message}" for j in rows
                if j.status != "succeeded"][:10],
        drain_seconds=round(time.monotonic() - t0, 1),
    )


def _metrics(scrapes: list[str]) -> tuple[dict[str, float], dict[str, float], str]:
    """(server request counts per 'METHOD route', jobs per 'kind/state', an excerpt)."""
    requests: dict[str, float] = defaultdict(float)
    jobs: dict[str, float] = {}
    lines: list[str] = []
    if scrapes:
        for fam in text_string_to_metric_families(scrapes[-1]):
            for s in fam.samples:
                if s.name == "srflow_http_request_duration_seconds_count":
                    requests[f"{s.labels['method']} {s.labels['route']}"] += s.value
                elif s.name == "srflow_jobs" and s.value:
                    jobs[f"{s.labels['kind']}/{s.labels['state']}"] = s.value
        during = scrapes[len(scrapes) // 2] if len(scrapes) > 1 else scrapes[0]
        keep = ("srflow_jobs{", "srflow_queue_depth", "srflow_workers_alive",
                'srflow_http_request_duration_seconds_count{method="GET",route="/v1/jobs"')
        lines = [ln for ln in during.splitlines() if ln.startswith(keep)]
    return dict(requests), jobs, "\n".join(lines)


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def summarize(stack: Any, outcomes: list[Outcome], wall: float, check: RegistryCheck,
              scrapes: list[str], clients: int, seconds: float,
              cut_off: int = 0) -> dict[str, Any]:
    by_route: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_route["bad inputs (all)" if o.route.startswith("bad: ") else o.route].append(o)
    rows = []
    for route, os_ in sorted(by_route.items()):
        lat = np.array([o.seconds for o in os_]) * 1000.0
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        statuses = Counter(str(o.status) for o in os_)
        rows.append(f"| {route} | {len(os_)} | {p50:.0f} | {p95:.0f} | {p99:.0f} | "
                    f"{', '.join(f'{k}: {v}' for k, v in sorted(statuses.items()))} | "
                    f"{sum(o.error is not None for o in os_)} |")
    five = sum(1 for o in outcomes if o.status is not None and o.status >= 500)
    transport = sum(1 for o in outcomes if o.status is None)
    wrong = [f"{o.route}: {o.error}" for o in outcomes if o.error is not None]
    requests, jobs, excerpt = _metrics(scrapes)
    table = "\n".join([
        f"{stack.kind} ({stack.database}, {stack.uvicorn_workers} API processes): {clients} "
        f"clients, {seconds:.0f} s, {len(outcomes)} requests, "
        f"{len(outcomes) / wall:.0f} req/s, {five} responses >= 500, {transport} transport "
        f"errors, {cut_off} clients cut off at the deadline; load average after {_loadavg()}",
        "| route | n | p50 ms | p95 ms | p99 ms | statuses | wrong |",
        "|---|---|---|---|---|---|---|", *rows])
    ok = (five == 0 and not wrong and cut_off == 0 and not check.lost and not check.duplicate_acks
          and not check.duplicate_rows and not check.failed
          and any(k.startswith("GET /v1/jobs") for k in requests) and bool(jobs))
    return {"ok": ok, "deployment": stack.kind, "database": stack.database,
            "uvicorn_workers": stack.uvicorn_workers,
            "celery_workers": stack.celery_workers, "clients": clients, "seconds": seconds,
            "requests": len(outcomes), "throughput_rps": round(len(outcomes) / wall, 1),
            "responses_5xx": five, "transport_errors": transport, "cut_off": cut_off,
            "wrong": wrong[:20], "wrong_count": len(wrong), "registry": asdict(check),
            "loadavg_after": _loadavg(),
            "server_request_counts": requests, "server_jobs": jobs, "scrapes": len(scrapes),
            "client_counts": {r: len(v) for r, v in by_route.items()},
            "table": table, "metrics": excerpt}

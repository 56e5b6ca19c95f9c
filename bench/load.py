"""Load test of the srflow API: N concurrent asyncio httpx clients for T seconds.

    python bench/load.py --deployment redis --clients 500 --seconds 60
    python bench/load.py --deployment redis --database postgresql --uvicorn-workers 4
    python bench/load.py --deployment embedded --clients 500 --seconds 60 --json out.json

Starts a throw-away deployment on loopback (``bench/load_stack.py``), makes ``USERS`` keys
in two groups, seeds one finished HMC job per group (an ensemble to download), then every
client loops over a weighted mix: list, get, Server-Sent Events (first event), ensemble
metadata and download (whole or Range), job submissions with an ``Idempotency-Key``
(tiny HMC jobs, at most ``--submit-rate`` a second in all; otherwise a replay of an
answered key, which must answer the same job; 429 — the key's rate limit or the group's
quota — is a valid answer), and deliberately bad inputs, each of which
must answer its 4xx as ``application/problem+json``. ``/metrics`` is scraped meanwhile.
Afterwards the jobs drain and the registry is read directly: every acknowledged job is
there exactly once (no loss), no key made two jobs (no duplicates), and all succeeded.
Latency is client-side, from sending the request to the full body (SSE: the first event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load_checks import BAD, Outcome, Registry, check_registry, summarize
from bench.load_stack import ADMIN_KEY, Stack, deployment

USERS = 20  # keys: max_streams_per_key and the per-key rate limits apply to each
HMC = {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "n_samples": 64, "chains": 4,
       "n_therm": 20}  # tiny (~1 s of HMC; a worker child's torch import costs more)
TIMEOUT_S = 30.0  # a request not answered in full by then is a transport error
RETRY_S = 10.0  # submissions are retried (same key) until this long after the end
MIX = (("list", 30), ("get", 22), ("events", 8), ("ensemble", 6), ("download", 12),
       ("submit", 7), ("bad", 15))


@dataclass
class Shared:
    """State the clients share: keys, known jobs, the submission budget, the outcomes."""

    keys: list[str]
    ensembles: list[str]
    submit_rate: float
    jobs: list[list[str]] = field(default_factory=list)  # per group: the others' are 404
    sent: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)  # body per key
    acked: dict[tuple[int, str], set[str]] = field(default_factory=dict)  # job ids per key
    outcomes: list[Outcome] = field(default_factory=list)
    tokens: float = 1.0
    cut_off: int = 0  # clients still busy at the hard deadline (cancelled)
    resets: int = 0  # GETs retried once after the connection was closed under them
    stamp: float = field(default_factory=time.monotonic)

    def take_submit_token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(2.0, self.tokens + (now - self.stamp) * self.submit_rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


async def _timed(shared: Shared, route: str, c: httpx.AsyncClient, method: str, url: str,
                 expect: tuple[int, ...], **kw: Any) -> httpx.Response | None:
    t0 = time.perf_counter()
    try:
        try:
            r = await c.request(method, url, **kw)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            if method != "GET":
                raise
            # a kept-alive connection the server closed as it was reused (uvicorn's
            # keep-alive is 5 s): retried once, as browsers and urllib3 do, and counted
            shared.resets += 1
            r = await c.request(method, url, **kw)
    except httpx.HTTPError as exc:
        shared.outcomes.append(Outcome(route, None, time.perf_counter() - t0, type(exc).__name__))
        return None
    problem = r.headers.get("content-type", "").startswith("application/problem+json")
    bad = None
    if r.status_code not in expect:
        detail = r.json().get("detail", "") if problem else r.text
        bad = f"unexpected {r.status_code}: {str(detail)[:100]}"
    elif r.status_code >= 400 and not problem:
        bad = f"{r.status_code} without problem+json"
    shared.outcomes.append(Outcome(route, r.status_code, time.perf_counter() - t0, bad))
    return r


async def _submit(shared: Shared, c: httpx.AsyncClient, user: int, rng: random.Random,
                  until: float) -> None:
    if shared.take_submit_token():
        key = str(uuid.uuid4())
        body = {"kind": "hmc", "spec": {**HMC, "seed": rng.randrange(1 << 30)}}
        shared.sent[(user, key)] = body
    elif shared.acked:  # a replay of an answered key: the same body must answer the same job
        user, key = rng.choice(list(shared.acked))
        body = shared.sent[(user, key)]
    else:  # no new job allowed yet and none answered to replay
        return
    auth = {"Authorization": f"Bearer {shared.keys[user]}", "Idempotency-Key": key}
    for _ in range(5):  # a client retries on a transport error or 409 (key in flight)
        if time.monotonic() > until + RETRY_S:
            return
        r = await _timed(shared, "POST /v1/jobs", c, "POST", "/v1/jobs", (202, 409, 429),
                         json=body, headers=auth)
        if r is not None and r.status_code == 429:
            return  # rate limit or group quota: a real client comes back after Retry-After
        if r is not None and r.status_code == 202:
            job = r.json()["name"].removeprefix("jobs/")
            shared.acked.setdefault((user, key), set()).add(job)
            if job not in shared.jobs[user % 2]:
                shared.jobs[user % 2].append(job)
            return
        await asyncio.sleep(0.2)


async def _events(shared: Shared, c: httpx.AsyncClient, job: str, auth: dict[str, str]) -> None:
    t0 = time.perf_counter()
    route = "GET /v1/jobs/{job_id}/events"
    try:
        async with c.stream("GET", f"/v1/jobs/{job}/events", headers=auth) as r:
            if r.status_code != 200:
                await r.aread()
                ok = r.status_code == 429 and "problem+json" in r.headers.get("content-type", "")
                shared.outcomes.append(Outcome(route, r.status_code, time.perf_counter() - t0,
                                               None if ok else f"unexpected {r.status_code}"))
                return
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    break
        shared.outcomes.append(Outcome(route, 200, time.perf_counter() - t0, None))
    except httpx.HTTPError as exc:
        shared.outcomes.append(Outcome(route, None, time.perf_counter() - t0, type(exc).__name__))


async def _client(shared: Shared, c: httpx.AsyncClient, idx: int, until: float) -> None:
    rng = random.Random(idx)
    user = idx % len(shared.keys)
    auth = {"Authorization": f"Bearer {shared.keys[user]}"}
    actions, weights = zip(*MIX, strict=True)
    while time.monotonic() < until:
        action = rng.choices(actions, weights)[0]
        job = rng.choice(shared.jobs[user % 2])
        ens = shared.ensembles[user % 2]
        if action == "list":
            params: dict[str, Any] = {"page_size": rng.choice((10, 50))}
            if rng.random() < 0.3:
                params["state"] = rng.choice(("queued", "running", "succeeded"))
            await _timed(shared, "GET /v1/jobs", c, "GET", "/v1/jobs", (200,),
                         params=params, headers=auth)
        elif action == "get":
            await _timed(shared, "GET /v1/jobs/{job_id}", c, "GET", f"/v1/jobs/{job}", (200,),
                         headers=auth)
        elif action == "events":
            await _events(shared, c, job, auth)
        elif action == "ensemble":
            await _timed(shared, "GET /v1/ensembles/{id}", c, "GET", f"/v1/ensembles/{ens}",
                         (200,), headers=auth)
        elif action == "download":
            rng_hdr = {"Range": "bytes=0-4095"} if rng.random() < 0.5 else {}
            await _timed(shared, "GET /v1/ensembles/{id}/download", c, "GET",
                         f"/v1/ensembles/{ens}/download", (200, 206),
                         headers={**auth, **rng_hdr})
        elif action == "submit":
            await _submit(shared, c, user, rng, until)
        else:
            bad = rng.choice(BAD)
            await _timed(shared, f"bad: {bad.name}", c, bad.method, bad.url(job, ens),
                         bad.expect, headers={**auth, **bad.headers}, content=bad.content())


async def _scrape(url: str, until: float, period: float, out: list[str]) -> None:
    """GET /metrics every ``period`` s until ``until``, then once more (the final counts)."""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as c:
        while True:
            last = time.monotonic() >= until
            if not last:
                await asyncio.sleep(period)
            try:
                r = await c.get("/metrics")
                if r.status_code == 200:
                    out.append(r.text)
            except httpx.HTTPError:
                pass
            if last:
                return


async def _run(stack: Stack, shared: Shared, clients: int, seconds: float) -> list[str]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients)
    scrapes: list[str] = []
    async with httpx.AsyncClient(base_url=stack.url, limits=limits,
                                 timeout=httpx.Timeout(TIMEOUT_S)) as c:
        until = time.monotonic() + seconds
        tasks = [asyncio.create_task(_client(shared, c, i, until)) for i in range(clients)]
        tasks.append(asyncio.create_task(_scrape(stack.url, until, min(5.0, seconds / 3),
                                                 scrapes)))
        _, pending = await asyncio.wait(tasks, timeout=seconds + RETRY_S + TIMEOUT_S + 5.0)
        for t in pending:  # a hard bound on the run's time, whatever the server does
            t.cancel()
        shared.cut_off = len(pending)
        await asyncio.gather(*pending, return_exceptions=True)
    await _scrape(stack.url, 0.0, 0.0, scrapes)  # after the run: the final counts
    return scrapes


def run_load(stack: Stack, clients: int, seconds: float, submit_rate: float,
             drain_s: float) -> dict[str, Any]:
    """Seed (one job per group), load, drain: ``bench.load_checks.summarize``'s dict."""
    reg = Registry(stack.db_url)
    keys = reg.make_keys(USERS)
    t_seed = time.monotonic()
    seeds = reg.seed_ensembles(stack.url, ADMIN_KEY, [keys[0], keys[1]], HMC, timeout=180.0)
    shared = Shared(keys=keys, ensembles=seeds, submit_rate=submit_rate, jobs=[[s] for s in seeds])
    t0 = time.monotonic()
    scrapes = asyncio.run(_run(stack, shared, clients, seconds))
    wall = time.monotonic() - t0
    check = check_registry(reg, shared.acked, set(seeds), drain_s)
    out = summarize(stack, shared.outcomes, wall, check, scrapes, clients, seconds,
                    shared.cut_off)
    out["resets_retried"] = shared.resets
    out["phase_seconds"] = {"seed": round(t0 - t_seed, 1), "run": round(wall, 1),
                            "drain": check.drain_seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--deployment", choices=("redis", "embedded"), default="redis")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite",
                   help="the registry (postgresql: a throw-away server, scripts/pg-test-server)")
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--submit-rate", type=float, default=0.2, help="new jobs a second, in all")
    p.add_argument("--uvicorn-workers", type=int, default=3)
    p.add_argument("--celery-workers", type=int, default=2)
    p.add_argument("--drain", type=float, default=300.0, help="max s for the jobs to finish")
    p.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    p.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 2000 and 0 < args.seconds <= 600):
        p.error("bounded: 1..2000 clients, up to 600 s")
    with deployment(args.deployment, args.uvicorn_workers, args.celery_workers,
                    keep=args.keep, database=args.database) as stack:
        summary = run_load(stack, args.clients, args.seconds, args.submit_rate, args.drain)
    print(summary["table"])
    print(json.dumps({k: v for k, v in summary.items() if k not in ("table", "metrics")},
                     indent=1))
    print(summary["metrics"])
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

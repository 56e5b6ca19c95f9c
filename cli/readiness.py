"""Waiting for the service's dependencies, and the health probes containers run.

``srflow serve`` and ``srflow worker`` wait (``startup_wait_s``) for the database and the
broker to accept connections before they start: a stack's containers start in any order
(podman-compose ignores ``depends_on: condition``), and a process that gave up at once
would only be restarted into the same race.

``srflow probe api`` and ``srflow probe worker`` are the health checks of
docker-compose.yml and the Dockerfile: plain words in exec form, which Docker, podman and
podman-compose all run unchanged (a ``python -c "..."`` or ``$HOSTNAME`` check is
garbled or empty under podman-compose). Exit 0: healthy; 1: not.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from core.settings import Settings, get_settings


def _redacted(url: str) -> str:
    """The URL without its password (for messages)."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}{sep}{creds.split(':', 1)[0]}:***@{host}"


def _wait(what: str, url: str, check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    told = False
    while True:
        try:
            check()
            if told:
                print(f"srflow: {what} at {_redacted(url)} is up", file=sys.stderr)
            return
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"srflow: error: {what} at {_redacted(url)} did not accept "
                                 f"connections within {timeout:.0f} s "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                                 ) from None
            if not told:
                print(f"srflow: waiting for {what} at {_redacted(url)} (up to {timeout:.0f} s)",
                      file=sys.stderr)
                told = True
            time.sleep(1.0)


def _database_answers(url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def _redis_answers(url: str) -> None:
    import redis

    with redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3) as r:
        r.ping()


def wait_for_dependencies(settings: Settings) -> None:
    """Return once the database (not SQLite: a file) and a Redis broker answer; exit with
    one line after ``startup_wait_s``."""
    if not settings.db_url.startswith("sqlite"):
        _wait("the database", settings.db_url, lambda: _database_answers(settings.db_url),
              settings.startup_wait_s)
    broker = settings.broker_url or ""
    if broker.startswith(("redis://", "rediss://")):
        _wait("the broker", broker, lambda: _redis_answers(broker), settings.startup_wait_s)


def probe_api(url: str, timeout: float) -> int:
    """0 when ``url``'s /v1/health answers ``status: ok`` (database and broker reachable)."""
    import httpx

    try:
        r = httpx.get(f"{url.rstrip('/')}/v1/health", timeout=timeout)
        status = r.json().get("status") if r.status_code == 200 else f"HTTP {r.status_code}"
    except (httpx.HTTPError, ValueError) as exc:
        status = type(exc).__name__
    if status == "ok":
        return 0
    print(f"srflow: API at {url} is not healthy: {status}", file=sys.stderr)
    return 1


def probe_worker(settings: Settings, hostname: str | None, timeout: float) -> int:
    """0 when this host's Celery worker answers a ping (Redis broker), or — embedded
    (filesystem transport, no remote control) — its liveness file is fresh."""
    node = (hostname or "celery@%h").replace("%h", socket.gethostname())
    if settings.embedded:
        beat = settings.root / "workers" / f"{node.replace('/', '_')}.json"
        fresh = beat.exists() and time.time() - beat.stat().st_mtime < 30.0
        if not fresh:
            print(f"srflow: worker {node}: no fresh liveness file {beat}", file=sys.stderr)
        return 0 if fresh else 1
    from worker.celery_app import get_app

    replies: list[Any] = get_app().control.ping(destination=[node], timeout=timeout) or []
    if any(node in r for r in replies):
        return 0
    print(f"srflow: worker {node} did not answer a ping within {timeout:.0f} s",
          file=sys.stderr)
    return 1


def cmd_probe(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.component == "api":
        return probe_api(args.url or settings.url, args.timeout)
    return probe_worker(settings, args.hostname, args.timeout)


def add_probe_verb(subparsers: Any) -> None:
    p = subparsers.add_parser("probe", help="health check of this container's API or worker "
                              "(exit 0: healthy), for docker-compose.yml and the Dockerfile")
    p.add_argument("component", choices=("api", "worker"))
    p.add_argument("--url", default=None, help="api: the server (default SRFLOW_URL, "
                   "http://127.0.0.1:8000)")
    p.add_argument("--hostname", "-n", default=None,
                   help="worker: its node name as given to 'srflow worker -n' (default "
                   "celery@%%h, %%h = this host)")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(handler=cmd_probe)

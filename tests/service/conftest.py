"""Real processes for the service tests: redis-server, a Celery worker, uvicorn, and the
embedded ``srflow serve``. Every fixture has a bounded start-up and kills what it started
(tests/service/processes.py has the pieces)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.databases import db_url, postgres_server  # SQLite | PostgreSQL
from tests.service.processes import (
    PY,
    Service,
    free_port,
    healthy,
    service_env,
    spawn,
    stop,
    wait_until,
)

__all__ = ["db_url", "postgres_server"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run scripts/test (it installs it)")
    port, d = free_port(), tmp_path_factory.mktemp("redis")
    p = spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
               "--save", "", "--appendonly", "no"], dict(os.environ), d / "redis.log")
    try:
        import redis

        wait_until(lambda: redis.Redis(port=port).ping(), 15, "redis-server", [p])
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(p)


@pytest.fixture(scope="session")
def redis_service(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """uvicorn + one Celery worker process (queues cpu,gpu) against a real Redis."""
    d = tmp_path_factory.mktemp("redis-service")
    env = service_env(d, redis_url)
    port = free_port()
    wlog, alog = d / "worker.log", d / "api.log"
    worker = spawn([PY, "-m", "celery", "-A", "worker.celery_app:app", "worker", "-Q",
                    "cpu,gpu", "-c", "1", "--max-tasks-per-child", "1", "-l", "INFO",
                    "-n", f"test-{port}@%h"], env, wlog)
    api = spawn([PY, "-m", "uvicorn", "--factory", "app.main:create_app", "--host",
                 "127.0.0.1", "--port", str(port)], env, alog)
    svc = Service(f"http://127.0.0.1:{port}", d, [wlog, alog], api.pid)
    try:
        wait_until(lambda: healthy(svc.url, True), 60, "redis API + worker", [worker, api])
        yield svc
    finally:
        stop(api)
        stop(worker)


@pytest.fixture(scope="session")
def embedded_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``srflow serve`` with no broker configured: filesystem transport, SQLite, no Redis."""
    d = tmp_path_factory.mktemp("embedded")
    env = service_env(d / "data", None)
    port = free_port()
    log = d / "serve.log"
    serve = spawn([PY, "-m", "cli.service", "serve", "--port", str(port),
                   "--data-dir", str(d / "data")], env, log)
    svc = Service(f"http://127.0.0.1:{port}", d / "data", [log])
    try:
        wait_until(lambda: healthy(svc.url, True), 60, "embedded service", [serve])
        yield svc
    finally:
        stop(serve, timeout=30)

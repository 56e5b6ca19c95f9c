"""Real processes for the service tests: redis-server, a Celery worker, uvicorn, and the
embedded ``srflow serve``. Every fixture has a bounded start-up and kills what it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.databases import db_url, postgres_server  # SQLite | PostgreSQL (issue 12)

__all__ = ["db_url", "postgres_server"]
ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "srf_7e57ab1e_service-tests-admin-key"
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               procs: list[subprocess.Popen[bytes]] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args!r} exited with {p.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout} s")


def stop(p: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    f = log.open("wb")
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)


def service_env(data_dir: Path, broker: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRFLOW_")}
    env.update(SRFLOW_DATA_DIR=str(data_dir), SRFLOW_ADMIN_KEY=ADMIN_KEY,
               SRFLOW_PROGRESS_INTERVAL_S="0.2", SRFLOW_SSE_POLL_S="0.2",
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               # tests that are not about rate limits submit in bursts (issue 10)
               SRFLOW_RATE_JOBS_BURST="100000", SRFLOW_RATE_UPLOADS_BURST="100000")
    if broker:
        env["SRFLOW_BROKER_URL"] = broker
    return env


@dataclass
class Service:
    url: str
    data_dir: Path
    logs: list[Path]
    api_pid: int | None = None

    def client(self, key: str = ADMIN_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"},
                            timeout=30.0)

    def dump_logs(self) -> str:
        return "\n".join(f"== {p}\n{p.read_text(errors='replace')[-4000:]}" for p in self.logs)


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


def _healthy(url: str, need_worker: bool) -> bool:
    r = httpx.get(f"{url}/v1/health", timeout=5,  # worker details need a key (issue 10)
                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    return r.status_code == 200 and (not need_worker or r.json()["workers"]["ok"])


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
        wait_until(lambda: _healthy(svc.url, True), 60, "redis API + worker", [worker, api])
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
    serve = spawn([PY, "-m", "core.cli.service", "serve", "--port", str(port),
                   "--data-dir", str(d / "data")], env, log)
    svc = Service(f"http://127.0.0.1:{port}", d / "data", [log])
    try:
        wait_until(lambda: _healthy(svc.url, True), 60, "embedded service", [serve])
        yield svc
    finally:
        stop(serve, timeout=30)

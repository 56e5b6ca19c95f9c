"""Throw-away srflow deployments on loopback for ``bench/load.py`` and its test.

- ``redis``: a redis-server, the API as ``srflow serve --workers N`` runs it (uvicorn with
  N processes, Prometheus multiprocess mode: a fresh ``PROMETHEUS_MULTIPROC_DIR``) and
  ``celery_workers`` Celery workers (``-c 1``, max-tasks-per-child 1, queues cpu,gpu),
  sharing one data directory; the registry on SQLite, or (``database="postgresql"``) on a
  throw-away PostgreSQL server (scripts/pg-test-server) with each process's pool as
  core/settings.py sizes it;
- ``embedded``: ``srflow serve`` with no broker (filesystem transport, one uvicorn process,
  one embedded worker).

Everything listens on 127.0.0.1, starts within a bounded wait and is killed (by process
group) when the ``with`` block ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "srf_10adbe9c_load-benchmark-admin-key"


@dataclass
class Stack:
    """A running deployment: its URL, data directory, registry URL and processes."""

    kind: str
    url: str
    data_dir: Path
    db_url: str
    uvicorn_workers: int
    celery_workers: int
    database: str = "sqlite"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    start_seconds: float = 0.0

    def tail_logs(self, chars: int = 3000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in self.logs if p.exists())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(p: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if p.poll() is not None:
        return
    os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=5)


def _wait(check: Callable[[], bool], timeout: float, what: str,
          procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: {p.args!r} exited with {p.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def _workers_ready(url: str, need: int) -> bool:
    r = httpx.get(f"{url}/v1/health", timeout=5,
                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    return r.status_code == 200 and r.json()["workers"]["count"] >= need


def _postgres(tmp: Path, procs: list[subprocess.Popen[bytes]]) -> str:
    """A throw-away PostgreSQL server (scripts/pg-test-server): its URL. The server stops
    once the placeholder process it outlives (appended to ``procs``) is stopped."""
    owner = subprocess.Popen(["sleep", "infinity"], start_new_session=True)
    procs.append(owner)
    out = subprocess.run([str(ROOT / "scripts" / "pg-test-server"), str(owner.pid)], cwd=ROOT,
                         check=True, capture_output=True, text=True)
    (tmp / "postgres.log").write_text(out.stderr)
    return out.stdout.strip().split("=", 1)[1]


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRFLOW_", "PROMETHEUS_"))}
    env.update(SRFLOW_DATA_DIR=str(data_dir), SRFLOW_ADMIN_KEY=ADMIN_KEY,
               OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               # every client shares one address and some send unknown keys on purpose:
               # the per-address sign-in throttle would answer everyone 429 (app/throttle.py)
               SRFLOW_AUTH_FAILURES_BURST="1000000")
    return env


@contextmanager
def deployment(kind: str, uvicorn_workers: int = 3, celery_workers: int = 2,
               start_timeout: float = 120.0, keep: bool = False,
               database: str = "sqlite") -> Iterator[Stack]:
    """Start the ``redis`` or ``embedded`` deployment; yield it once healthy. ``keep``:
    leave the data directory and logs behind (their path is printed). ``database``:
    sqlite or postgresql (the registry)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"srflow-load-{kind}-"))
    data = tmp / "data"
    data.mkdir()
    env = _env(data)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    from cli.service import api_command
    from core.settings import Settings

    if database not in ("sqlite", "postgresql"):
        raise ValueError(f"database {database!r}: use sqlite or postgresql")
    stack = Stack(kind, url, data, Settings(data_dir=data).db_url, 1, 1, database)
    try:
        if database == "postgresql":
            stack.db_url = _postgres(tmp, stack.procs)
            env["SRFLOW_DATABASE_URL"] = stack.db_url
        if kind == "embedded":
            log = tmp / "serve.log"
            stack.logs.append(log)
            stack.procs.append(_spawn([sys.executable, "-m", "cli.service", "serve",
                                       "--port", str(port), "--data-dir", str(data),
                                       "--loglevel", "INFO"], env, log))
        elif kind == "redis":
            exe = shutil.which("redis-server")
            if exe is None:
                raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
            rport = free_port()
            stack.logs.append(tmp / "redis.log")
            stack.procs.append(_spawn([exe, "--port", str(rport), "--bind", "127.0.0.1",
                                       "--dir", str(tmp), "--save", "", "--appendonly", "no"],
                                      env, tmp / "redis.log"))
            env["SRFLOW_BROKER_URL"] = f"redis://127.0.0.1:{rport}/0"
            prom = tmp / "prometheus"
            prom.mkdir()
            api_env = dict(env, PROMETHEUS_MULTIPROC_DIR=str(prom))
            stack.uvicorn_workers, stack.celery_workers = uvicorn_workers, celery_workers
            for i in range(celery_workers):
                log = tmp / f"worker{i}.log"
                stack.logs.append(log)
                stack.procs.append(_spawn(
                    [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
                     "-Q", "cpu,gpu", "-c", "1", "--max-tasks-per-child", "1",
                     "--prefetch-multiplier", "1", "-l", "WARNING", "-n", f"load{i}@%h"],
                    env, log))
            log = tmp / "api.log"
            stack.logs.append(log)
            api = api_command("127.0.0.1", port, uvicorn_workers, "info")  # srflow serve's
            stack.procs.append(_spawn([*api, "--no-access-log", "--backlog", "4096"],
                                      api_env, log))
        else:
            raise ValueError(f"deployment {kind!r}: use redis or embedded")
        t0 = time.monotonic()
        _wait(lambda: _workers_ready(url, stack.celery_workers), start_timeout,
              f"{kind} deployment", stack.procs)
        stack.start_seconds = round(time.monotonic() - t0, 1)
        yield stack
    finally:
        for p in reversed(stack.procs):
            _stop(p)
        if keep:
            print(f"load: logs and data kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

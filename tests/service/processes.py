"""Starting and stopping the service's real processes in tests: ports, bounded waits,
process groups, the environment of a test server, and the :class:`Service` handle the
fixtures (tests/service/conftest.py) yield."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

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
               # tests that are not about rate limits submit in bursts
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


def healthy(url: str, need_worker: bool) -> bool:
    r = httpx.get(f"{url}/v1/health", timeout=5,  # worker details need a key
                  headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    return r.status_code == 200 and (not need_worker or r.json()["workers"]["ok"])

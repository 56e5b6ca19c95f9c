"""Servers for the sharing tests (issue 6), on top of ``tests/service/conftest.py``:

- ``api_only``: uvicorn against the session Redis, database 1 (no worker consumes it), so
  submissions stay queued — for concurrency and visibility of jobs without running them;
- ``small_embedded``: ``srflow serve`` with a 300 kB upload limit — the second server of
  the upload round trip and the target of the upload refusals.
Every process is started with a bounded wait and killed at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import (
    ADMIN_KEY,
    PY,
    Service,
    _healthy,
    free_port,
    service_env,
    spawn,
    stop,
    wait_until,
)

UPLOAD_LIMIT = 300_000
# 10 s, not 5: on a loaded 2-core machine the heartbeat thread was starved for > 5 s and a
# live job was reaped three times (WorkerLost) — seen while benchmarks ran beside the suite
FAST_RECOVERY = {"SRFLOW_HEARTBEAT_TIMEOUT_S": "10", "SRFLOW_HEARTBEAT_INTERVAL_S": "0.5",
                 "SRFLOW_PROGRESS_INTERVAL_S": "0.2"}


@pytest.fixture(scope="session")
def api_only(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    d = tmp_path_factory.mktemp("api-only")
    env = service_env(d, redis_url.rsplit("/", 1)[0] + "/1")
    env["SRFLOW_MAX_UPLOAD_BYTES"] = str(UPLOAD_LIMIT)
    port = free_port()
    log = d / "api.log"
    api = spawn([PY, "-m", "uvicorn", "--factory", "app.main:create_app", "--host",
                 "127.0.0.1", "--port", str(port)], env, log)
    svc = Service(f"http://127.0.0.1:{port}", d, [log], api.pid)
    try:
        wait_until(lambda: _healthy(svc.url, False), 60, "API without worker", [api])
        yield svc
    finally:
        stop(api)


@pytest.fixture(scope="session")
def small_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    d = tmp_path_factory.mktemp("small-embedded")
    env = service_env(d / "data", None)
    env.update(FAST_RECOVERY, SRFLOW_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
    port = free_port()
    log = d / "serve.log"
    serve = spawn([PY, "-m", "core.cli.service", "serve", "--port", str(port),
                   "--data-dir", str(d / "data")], env, log)
    svc = Service(f"http://127.0.0.1:{port}", d / "data", [log])
    try:
        wait_until(lambda: _healthy(svc.url, True), 90, "embedded service", [serve])
        yield svc
    finally:
        stop(serve, timeout=30)


@dataclass(frozen=True)
class Member:
    name: str
    group: str
    key: str
    prefix: str

    def client(self, svc: Service) -> httpx.Client:
        return svc.client(self.key)


def make_member(svc: Service, group: str, name: str | None = None, **quota: int) -> Member:
    """A user in ``group`` (created if new, with ``quota`` overrides) and a fresh key."""
    name = name or f"u{uuid.uuid4().hex[:8]}"
    with svc.client(ADMIN_KEY) as c:
        r = c.post("/v1/groups", json={"name": group, **quota})
        assert r.status_code in (201, 409), r.text
        r = c.post("/v1/users", json={"name": name, "groups": [group]})
        assert r.status_code == 201, r.text
        r = c.post(f"/v1/users/{name}/keys")
        assert r.status_code == 201, r.text
    return Member(name, group, r.json()["key"], r.json()["prefix"])


def blob_files(data_dir: Path) -> list[Path]:
    root = data_dir / "artifacts" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

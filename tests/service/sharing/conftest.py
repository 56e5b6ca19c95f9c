"""Servers for the sharing tests, on top of ``tests/service/conftest.py``:

- ``api_only``: uvicorn against the session Redis, database 1 (no worker consumes it), so
  submissions stay queued — for concurrency and visibility of jobs without running them;
- ``small_embedded``: ``srflow serve`` with a 300 kB upload limit — the second server of
  the upload round trip and the target of the upload refusals.
Every process is started with a bounded wait and killed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
from tests.service.sharing.members import FAST_RECOVERY, UPLOAD_LIMIT


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
        wait_until(lambda: healthy(svc.url, False), 60, "API without worker", [api])
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
    serve = spawn([PY, "-m", "cli.service", "serve", "--port", str(port),
                   "--data-dir", str(d / "data")], env, log)
    svc = Service(f"http://127.0.0.1:{port}", d / "data", [log])
    try:
        wait_until(lambda: healthy(svc.url, True), 90, "embedded service", [serve])
        yield svc
    finally:
        stop(serve, timeout=30)



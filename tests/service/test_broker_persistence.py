"""``srflow serve`` warns (one line on stderr) when the Redis broker would lose queued jobs
on a restart: appendonly off. The session's redis-server runs without
persistence (``--save "" --appendonly no``); a second one here runs with appendonly."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.service import broker_persistence_warning
from tests.service.processes import (
    PY,
    free_port,
    service_env,
    spawn,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.service]


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("redis-server")
    assert exe is not None, "redis-server is not installed: run scripts/test"
    port, d = free_port(), tmp_path_factory.mktemp("redis-aof")
    p = spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
               "--appendonly", "yes"], dict(os.environ), d / "redis.log")
    import redis

    try:
        wait_until(lambda: redis.Redis(port=port).ping(), 15, "redis-server", [p])
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(p)


def test_warning_only_without_appendonly(redis_url: str, durable_redis: str) -> None:
    warning = broker_persistence_warning(redis_url)
    assert warning is not None and "appendonly off" in warning and "\n" not in warning
    assert "no RDB snapshots either" in warning  # the session server has --save ""
    assert broker_persistence_warning(durable_redis) is None
    assert broker_persistence_warning("filesystem://") is None  # embedded: no Redis
    assert broker_persistence_warning(f"redis://127.0.0.1:{free_port()}/0") is None  # down


@pytest.mark.slow
def test_serve_prints_the_warning_once_on_stderr(redis_url: str, tmp_path: Path) -> None:
    env = service_env(tmp_path / "data", redis_url.rsplit("/", 1)[0] + "/4")
    log = tmp_path / "serve.log"
    p = spawn([PY, "-m", "cli.service", "serve", "--port", str(free_port()),
               "--data-dir", str(tmp_path / "data")], env, log)
    try:
        wait_until(lambda: "srflow: serving" in log.read_text(), 60, "srflow serve", [p])
    finally:
        stop(p)
    lines = [ln for ln in log.read_text().splitlines() if "appendonly off" in ln]
    assert len(lines) == 1 and lines[0].startswith("srflow: warning: the broker's Redis")

"""Load shedding (app/shedding.py): on PostgreSQL, where each process's pool is bounded
(``db_pool_size`` + ``db_max_overflow``), a request that finds every connection busy for
``db_pool_timeout_s`` is answered at once with 503, ``Retry-After`` and problem+json — not
held until the client times out — and the next request after a connection comes back is
served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.shedding import RETRY_AFTER_S
from core.registry.db import engine_for
from core.settings import Settings
from tests.databases import create_database, drop_database

ADMIN = "srf_5bedda7a_shedding-tests-admin-key"


@pytest.fixture
def tiny_pool(postgres_server: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    """The API on a fresh PostgreSQL database whose pool is one connection, no overflow,
    and a 0.3 s wait (read when the engine is made: this database's URL is new)."""
    monkeypatch.setenv("SRFLOW_DB_POOL_SIZE", "1")
    monkeypatch.setenv("SRFLOW_DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("SRFLOW_DB_POOL_TIMEOUT_S", "0.3")
    url = create_database(postgres_server)
    try:
        app = create_app(Settings(data_dir=tmp_path, database_url=url, admin_key=ADMIN))
        with TestClient(app) as c:
            yield c, url
    finally:
        drop_database(postgres_server, url)


def test_an_exhausted_pool_answers_503_with_retry_after(tiny_pool: tuple[TestClient, str]
                                                        ) -> None:
    c, url = tiny_pool
    auth = {"Authorization": f"Bearer {ADMIN}"}
    engine = engine_for(url)
    assert engine.pool.size() == 1  # type: ignore[attr-defined]
    assert c.get("/v1/jobs", headers=auth).status_code == 200
    held = engine.connect()  # the process's only connection, busy elsewhere
    try:
        t0 = time.monotonic()
        r = c.get("/v1/jobs", headers=auth)
        waited = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == str(RETRY_AFTER_S)
        assert r.headers["content-type"].startswith("application/problem+json")
        doc = r.json()
        assert doc["status"] == 503 and doc["type"] == "/problems/overloaded"
        assert "retry after" in doc["detail"] and doc["instance"] == "/v1/jobs"
        assert 0.3 <= waited < 5.0  # the pool's wait, then at once: not the client's timeout
        r = c.post("/v1/jobs", headers=auth, json={"kind": "hmc", "spec": {
            "dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "n_samples": 16}})
        assert r.status_code == 503 and "retry-after" in r.headers  # writes shed the same
    finally:
        held.close()
    assert c.get("/v1/jobs", headers=auth).status_code == 200  # served again


def test_requests_queue_for_the_pool_not_for_threads(tiny_pool: tuple[TestClient, str]
                                                     ) -> None:
    """Each API process has api_threads worker threads, not anyio's 40: a request holding a
    pooled connection must find a thread for its next step (app/shedding.py)."""
    c, _ = tiny_pool
    limiter = anyio.to_thread.current_default_thread_limiter
    assert c.portal is not None
    assert c.portal.call(lambda: limiter().total_tokens) == Settings().api_threads > 40

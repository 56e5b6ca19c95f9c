"""The group deployment on a real PostgreSQL: uvicorn with two worker processes
and two Celery workers against redis-server and an empty PostgreSQL database, which the
four processes migrate together at start-up.

The SQLite runs of the same round trips are test_redis_service.py and the sharing tests;
here: a job end to end (SSE, download with Range and checksum), two workers draining a
burst of jobs (each run once, each ensemble registered once), and identical
Idempotency-Keys sent at once to both API processes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from core.registry.db import alembic_config
from tests.databases import create_database, drop_database
from tests.service.helpers import SMALL_HMC, hmc_roundtrip, submit, wait_state
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

pytestmark = [pytest.mark.service, pytest.mark.slow]


@pytest.fixture(scope="module")
def pg_db(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server)
    try:
        yield url
    finally:
        drop_database(postgres_server, url)


@pytest.fixture(scope="module")
def pg_service(redis_url: str, pg_db: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    d = tmp_path_factory.mktemp("pg-service")
    env = service_env(d, redis_url.rsplit("/", 1)[0] + "/3")  # a Redis db of its own
    env["SRFLOW_DATABASE_URL"] = pg_db
    port = free_port()
    logs = [d / "worker-a.log", d / "worker-b.log", d / "api.log"]
    workers = [spawn([PY, "-m", "celery", "-A", "worker.celery_app:app", "worker", "-Q",
                      "cpu,gpu", "-c", "1", "--max-tasks-per-child", "1",
                      "--prefetch-multiplier", "1", "-l", "INFO", "-n", f"pg-{n}-{port}@%h"],
                     env, log) for n, log in zip("ab", logs, strict=False)]
    api = spawn([PY, "-m", "uvicorn", "--factory", "app.main:create_app", "--host",
                 "127.0.0.1", "--port", str(port), "--workers", "2"], env, logs[2])
    svc = Service(f"http://127.0.0.1:{port}", d, logs, api.pid)
    try:
        wait_until(lambda: healthy(svc.url, True), 90, "API + 2 workers on PostgreSQL",
                   [*workers, api])
        yield svc
    finally:
        stop(api)
        for w in workers:
            stop(w)


def _rows(url: str, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with create_engine(url, poolclass=NullPool).connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


def test_job_round_trip_on_postgres(pg_service: Service, pg_db: str, tmp_path: Path) -> None:
    """submit → SSE → succeeded → ensemble metadata → download (whole, Range, resume);
    the rows are in PostgreSQL (not a stray SQLite file) at the head revision."""
    hmc_roundtrip(pg_service, tmp_path)
    assert _rows(pg_db, "SELECT count(*) FROM ensembles") == [(1,)]
    head = ScriptDirectory.from_config(alembic_config(pg_db)).get_current_head()
    assert _rows(pg_db, "SELECT version_num FROM alembic_version") == [(head,)]
    assert not (pg_service.data_dir / "registry.db").exists()


def test_two_workers_run_each_job_once(pg_service: Service, pg_db: str) -> None:
    ids = [submit(pg_service, "hmc", {**SMALL_HMC, "seed": 10 + i}) for i in range(6)]
    for job_id in ids:
        op = wait_state(pg_service, job_id, lambda op: op["done"], 180)
        assert op["metadata"]["state"] == "succeeded", (op, pg_service.dump_logs())
    quoted = ", ".join(f"'{i}'" for i in ids)
    rows = _rows(pg_db, f"SELECT id, attempts, worker FROM jobs WHERE id IN ({quoted})")
    assert sorted(r[0] for r in rows) == sorted(ids) and {r[1] for r in rows} == {1}
    assert len({r[2] for r in rows}) == 2, rows  # both workers took jobs
    ens = _rows(pg_db, f"SELECT job_id FROM ensembles WHERE job_id IN ({quoted})")
    assert sorted(r[0] for r in ens) == sorted(ids)  # one ensemble per job, none twice


def test_identical_idempotency_keys_at_once(pg_service: Service, pg_db: str) -> None:
    """16 identical submissions with one Idempotency-Key, spread over both API processes:
    one job; every answer names it (202) or says the key is being handled (409)."""
    key = f"same-{uuid.uuid4().hex[:8]}"
    body = {"kind": "hmc", "spec": {**SMALL_HMC, "seed": 99}}

    def post(_: int) -> tuple[int, str | None]:
        with pg_service.client() as c:
            r = c.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        return r.status_code, r.json().get("name") if r.status_code == 202 else None

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(post, range(16)))
    codes = {code for code, _ in answers}
    assert codes <= {202, 409} and 202 in codes, answers
    assert len({name for _, name in answers if name}) == 1
    assert _rows(pg_db, f"SELECT count(*) FROM jobs WHERE idempotency_key = '{key}'") == [(1,)]

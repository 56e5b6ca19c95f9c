"""A Server-Sent Events stream holds no pooled database connection between polls."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from app.main import create_app
from core.registry import jobs as rows
from core.registry.db import engine_for, session_scope
from core.registry.keys import Caller
from core.settings import Settings

KEY = "srf_e7e9750a_events-pool-admin-key"


def test_event_stream_returns_the_request_connection(tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: the pool has nothing checked out mid-stream."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, sse_poll_s=60.0,  # no poll meanwhile
                        database_url=db_url)
    with TestClient(create_app(settings)) as c:
        with session_scope(settings.db_url) as s:
            rows.create_job(s, job_id="j1", kind="hmc", spec={}, queue="cpu",
                            caller=Caller("admin", ("admin",), True, ""))
        pool = engine_for(settings.db_url).pool
        with c.stream("GET", "/v1/jobs/j1/events",
                      headers={"Authorization": f"Bearer {KEY}"}) as r:
            first = next(line for line in r.iter_lines() if line.startswith("data:"))
            assert r.status_code == 200 and '"state":"queued"' in first.replace(" ", "")
            assert pool.checkedout() == 0  # the stream still runs (queued job, never done)
            if db_url.startswith("postgresql"):  # and the server holds no open transaction
                with create_engine(db_url, poolclass=NullPool).connect() as other:
                    idle = other.exec_driver_sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND state = 'idle in transaction'").scalar()
                assert idle == 0

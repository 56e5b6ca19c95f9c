"""Job budgets: memory, volume and wall time are refused at submission with a
problem+json naming the field; a worker lost near memory capacity is not retried blindly;
every job has a wall-time limit."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

import core.jobs.protocol
import core.jobs.run
from app.main import _reap_once, create_app
from core.registry import jobs as rows
from core.registry.db import session_scope, upgrade
from core.registry.keys import Caller
from core.registry.models import Job, utcnow
from core.settings import Settings
from worker.celery_app import celery_config
from worker.runner import execute

KEY = "srf_b0d9e750_budgets-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
THEORY = {"kappa": 0.2, "lam": 0.01}
ALICE = Caller("alice", ("lab-a",), False, "")


@pytest.fixture
def client(tmp_path: Path) -> Any:
    with TestClient(create_app(Settings(data_dir=tmp_path, admin_key=KEY))) as c:
        yield c


@pytest.mark.parametrize(("spec", "field", "needle"), [
    ({"kind": "hmc", "spec": {**THEORY, "dim": 3, "L": 512, "n_samples": 1, "chains": 4096}},
     "spec.chains", "worker_memory_bytes"),
    ({"kind": "hmc", "spec": {**THEORY, "dim": 2, "L": 64, "n_samples": 10, "n_therm": 10**6,
                              "chains": 64}}, "spec.n_therm", "max_sample_volume"),
    ({"kind": "train", "spec": {**THEORY, "method": "baseline", "L": 8,
                                "bond_freq": 10**6}},
     "spec.bond_freq", "less than or equal to 1024"),
    ({"kind": "train", "spec": {**THEORY, "dim": 3, "L": 128, "batch": 4096, "steps": 1}},
     "spec.batch", "worker_memory_bytes"),
    ({"kind": "train", "spec": {**THEORY, "dim": 3, "L": 64, "batch": 2, "steps": 10**6}},
     "spec.steps", "max_sample_volume"),
    ({"kind": "hmc", "spec": {**THEORY, "L": 8, "n_samples": 10, "max_seconds": 1e9}},
     "spec.max_seconds", "max_job_seconds"),
    # the IR source's Langevin thermalisation: batch · coarse_L^d sites per step
    ({"kind": "train", "spec": {**THEORY, "L": 8, "batch": 1024, "steps": 1,
                                "langevin_therm": 10**7}},
     "spec.langevin_therm", "max_sample_volume"),
    ({"kind": "scan", "spec": {"dim": 2, "L": 8, "kappa": [0.2, 0.25], "lam": 0.01,
                               "batch": 1024, "steps_per_point": 1,
                               "langevin_therm": 10**7}},
     "spec.langevin_therm", "max_sample_volume"),
    # a scan's total is derived: the error names the field the user set
    ({"kind": "scan", "spec": {"dim": 2, "L": 8, "kappa": [0.2, 0.25], "lam": 0.01,
                               "max_minutes_per_point": 1e7}},
     "spec.max_minutes_per_point", "max_job_seconds"),
])
def test_over_budget_jobs_are_422_naming_the_field(client: TestClient, spec: dict,
                                                   field: str, needle: str) -> None:
    """Before: each of these was accepted (202) and queued."""
    r = client.post("/v1/jobs", json=spec, headers=AUTH)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert [e["field"] for e in body["errors"]] == [field], body
    assert needle in body["detail"]


def _running_stale(settings: Settings, job_id: str, spec: dict, attempts: int) -> None:
    with session_scope(settings.db_url) as s:
        rows.create_job(s, job_id=job_id, kind="hmc", spec=spec, queue="cpu", caller=ALICE)
        s.execute(update(Job).where(Job.id == job_id).values(
            status="running", attempt_token=f"tok-{job_id}", attempts=attempts,
            heartbeat_at=utcnow() - timedelta(seconds=3600)))


def test_a_worker_lost_near_memory_capacity_fails_the_job_naming_memory(tmp_path: Path) -> None:
    """Before: a job estimated at 80 % of a worker's memory whose worker vanished (an OOM
    kill) was re-queued max_attempts times, to be killed again each time."""
    spec = {**THEORY, "dim": 2, "L": 64, "n_samples": 1000, "chains": 16}  # ≈ 102 MB
    settings = Settings(data_dir=tmp_path, heartbeat_timeout_s=60, max_attempts=3,
                        worker_memory_bytes=128 * 10**6, oom_risk_fraction=0.5)
    app = create_app(settings)
    upgrade(settings.db_url)
    _running_stale(settings, "big", spec, attempts=1)
    _running_stale(settings, "small", {**spec, "L": 8}, attempts=1)
    _running_stale(settings, "small-last", {**spec, "L": 8}, attempts=3)
    _reap_once(app)
    with session_scope(settings.db_url) as s:
        big, small, last = (rows.get_job(s, i) for i in ("big", "small", "small-last"))
        assert big is not None and big.status == "failed" and big.error_type == "WorkerLost"
        assert "killed for memory" in str(big.error_message)
        assert "reduce n_samples" in str(big.error_message)
        assert small is not None and small.status == "queued"  # far from capacity: retried
        assert last is not None and last.status == "failed"  # all attempts died
        assert "out-of-memory" in str(last.error_message)


def test_every_task_has_a_soft_time_limit(tmp_path: Path) -> None:
    """Before: without SRFLOW_SOFT_TIME_LIMIT_S no Celery time limit was set at all."""
    conf = celery_config(Settings(data_dir=tmp_path))
    assert conf["task_soft_time_limit"] > 48 * 3600
    assert conf["task_time_limit"] > conf["task_soft_time_limit"]


def test_a_job_past_max_job_seconds_fails_with_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: no job had a wall-time limit unless its spec asked for one."""
    settings = Settings(data_dir=tmp_path, max_job_seconds=0.2)
    upgrade(settings.db_url)
    with session_scope(settings.db_url) as s:
        rows.create_job(s, job_id="slow", kind="hmc", spec={**THEORY, "L": 8, "n_samples": 4},
                        queue="cpu", caller=ALICE)

    def fake_run_job(*_: Any, should_stop: Any, **__: Any) -> Any:
        give_up = time.monotonic() + 5.0  # old code: never told to stop
        while not should_stop():
            if time.monotonic() > give_up:
                raise RuntimeError("never stopped")
            time.sleep(0.01)
        raise core.jobs.protocol.JobCancelled("stopped")

    monkeypatch.setattr(core.jobs.run, "run_job", fake_run_job)
    assert execute("slow", settings, token="a1", hostname="test") == "failed"
    with session_scope(settings.db_url) as s:
        job = rows.get_job(s, "slow")
        assert job is not None and job.error_type == "TimeLimitExceeded"
        assert "max_job_seconds=0" in str(job.error_message)

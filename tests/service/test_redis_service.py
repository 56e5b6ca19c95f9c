"""End to end over real HTTP: uvicorn + a Celery worker process + a real redis-server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.service.helpers import hmc_roundtrip, submit, wait_state
from tests.service.processes import Service

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_hmc_job_round_trip_with_redis(redis_service: Service, tmp_path: Path) -> None:
    """submit → SSE until succeeded → ensemble metadata → download (whole, Range, resume)
    → sha256 = ETag = Repr-Digest → the HDF5 names its job and ensemble."""
    hmc_roundtrip(redis_service, tmp_path)


def test_cancel_running_job_stops_and_registers_nothing(redis_service: Service) -> None:
    spec = {"dim": 2, "L": 16, "kappa": 0.2, "lam": 0.01, "n_samples": 200000,
            "chains": 2, "n_therm": 100000, "thin": 1}
    job_id = submit(redis_service, "hmc", spec)
    wait_state(redis_service, job_id,
               lambda op: (op["metadata"]["progress"] or {}).get("step", 0) > 0, 60)
    with redis_service.client() as c:
        t0 = time.monotonic()
        r = c.post(f"/v1/jobs/{job_id}:cancel")
        assert r.status_code == 200 and r.json()["metadata"]["cancel_requested"] is True
    op = wait_state(redis_service, job_id, lambda op: op["done"], 30)
    assert time.monotonic() - t0 < 15
    assert op["metadata"]["state"] == "cancelled"
    assert op["error"]["code"] == 1 and op.get("response") is None
    assert op["metadata"]["progress"]["step"] < op["metadata"]["progress"]["total"]
    with redis_service.client() as c:
        assert c.get(f"/v1/ensembles/{job_id}").status_code == 404
        listed = c.get("/v1/jobs", params={"state": "cancelled"}).json()["operations"]
    assert [o["name"] for o in listed] == [f"jobs/{job_id}"]
    assert not (redis_service.data_dir / "work" / job_id).exists()


def test_running_api_process_has_no_torch_mapped(redis_service: Service) -> None:
    """The live uvicorn process (after serving jobs) never loaded libtorch."""
    assert redis_service.api_pid is not None
    maps = Path(f"/proc/{redis_service.api_pid}/maps").read_text()
    assert "python" in maps  # the check reads a real process map
    assert "libtorch" not in maps

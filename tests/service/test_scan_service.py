"""Scan jobs through the embedded service: HTTP submit, SSE progress (point i of
n, phase, ESS/N), per-point models and ensembles registered, the plot downloadable, cancel
keeping the finished points, and bad grids refused with 422 before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from core.client import SrflowClient
from tests.service.helpers import sse_events, submit, wait_state
from tests.service.processes import ADMIN_KEY, Service

pytestmark = [pytest.mark.service, pytest.mark.slow]

TINY: dict[str, Any] = {"method": "ir", "dim": 2, "L": 8, "lam": 0.01, "steps_per_point": 2,
                        "batch": 16, "langevin_therm": 50, "eval_samples": 32,
                        "n_samples": 48, "chains": 4, "seed": 3}


def _scan_count(svc: Service) -> int:
    with svc.client() as c:
        return len(c.get("/v1/jobs", params={"kind": "scan", "page_size": 1000})
                   .json()["operations"])


@pytest.mark.parametrize(("spec", "field"), [
    ({**TINY, "kappa": []}, "spec.kappa"),
    ({**TINY, "kappa": [0.2 + 0.001 * i for i in range(65)]}, "spec.kappa"),
    ({**TINY, "kappa": None, "points": [{"kappa": 0.2, "lam": 0.01},
                                        {"kappa": 0.25, "lam": 0.01, "dim": 3}]}, "spec.dim"),
    ({**TINY, "L": 12, "kappa": [0.2]}, "spec.L"),
    ({**TINY, "kappa": [0.2], "lam": -0.01}, "spec.lam"),
])
def test_bad_scans_are_422_and_register_nothing(embedded_service: Service, spec: dict[str, Any],
                                                field: str) -> None:
    before = _scan_count(embedded_service)
    with embedded_service.client() as c:
        r = c.post("/v1/jobs", json={"kind": "scan", "spec": spec})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == field, r.json()
    assert _scan_count(embedded_service) == before


def test_scan_round_trip(embedded_service: Service, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    svc = embedded_service
    with SrflowClient(svc.url, ADMIN_KEY) as client:
        op = client.scan([0.2, 0.25], **{k: v for k, v in TINY.items() if k != "method"})
    job_id = op["name"].removeprefix("jobs/")
    events = sse_events(svc, job_id, timeout=300)
    final_event, final = events[-1]
    assert final_event == "done" and final["metadata"]["state"] == "succeeded", (
        final, svc.dump_logs())
    stages = [op["metadata"]["progress"].get("stage", "") for _, op in events[:-1]]
    assert any(s.startswith("point 1/2 train") for s in stages), stages
    assert any(s.startswith("point 2/2 sample") for s in stages), stages
    progress = final["metadata"]["progress"]
    assert progress["stage"] == "point 2/2 done" and progress["points"] == 2
    assert 0 < progress["ess"] <= 1
    summary = final["response"]["summary"]
    assert summary["stopped"] == "complete" and summary["plot"] == f"/v1/jobs/{job_id}/plot"
    points = summary["points"]
    assert [p["kappa"] for p in points] == [0.2, 0.25]
    with svc.client() as c:
        for i, p in enumerate(points):
            assert set(p["couplings"]) == {"coarse", "fine"} and 0 < p["ess"] <= 1
            assert set(p["observables"]["susceptibility"]) == {"mean", "error", "tau_int"}
            name, version = p["model"].rsplit("/", 1)
            mv = c.get(f"/v1/models/{name}/versions/{version}").json()
            assert mv["job_id"] == f"{job_id}.p{i:02d}.train"
            assert mv["parent"] == (points[0]["model"] if i else None)  # the warm start
            ens = c.get(f"/v1/ensembles/{p['ensemble']}").json()
            assert ens["job_id"] == p["ensemble"] == f"{job_id}.p{i:02d}.sample"
            assert ens["theory"]["kappa"] == p["kappa"] and ens["n"] == 48
            child = c.get(f"/v1/jobs/{p['ensemble']}").json()
            assert child["metadata"]["kind"] == "sample" and child["done"]
        record = c.get(f"/v1/jobs/{job_id}/scan").json()
        assert record["state"] == "succeeded" and record["points"] == points
        assert c.get(f"/v1/jobs/{points[0]['ensemble']}/plot").status_code == 404
    with SrflowClient(svc.url, ADMIN_KEY) as client:
        got = client.download_plot(job_id, tmp_path / "fig4.png")
    assert got.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and got.size > 10_000
    assert main(["status", job_id, "--url", svc.url, "--key", ADMIN_KEY]) == 0
    shown = capsys.readouterr().out
    assert f"model {points[1]['model']}" in shown and f"/v1/jobs/{job_id}/plot" in shown


def test_cancel_keeps_the_finished_points(embedded_service: Service) -> None:
    svc = embedded_service
    job_id = submit(svc, "scan", {**TINY, "kappa": [0.2, 0.25, 0.27]})
    wait_state(svc, job_id, lambda op: str(op["metadata"]["progress"].get("stage", ""))
               .startswith("point 1/3"), timeout=120)
    with svc.client() as c:
        assert c.post(f"/v1/jobs/{job_id}:cancel").status_code == 200
    final = wait_state(svc, job_id, lambda op: op["done"], timeout=240)
    assert final["metadata"]["state"] == "cancelled", svc.dump_logs()
    with svc.client() as c:
        record = c.get(f"/v1/jobs/{job_id}/scan").json()
        assert record["state"] == "cancelled" and record["stopped"] == "cancelled"
        assert [p["kappa"] for p in record["points"]] == [0.2]  # point 1 finished, then stop
        ens = record["points"][0]["ensemble"]
        assert c.get(f"/v1/ensembles/{ens}").status_code == 200  # kept and registered
        assert c.get(f"/v1/jobs/{job_id}/plot").status_code == 200

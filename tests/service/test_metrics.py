"""GET /metrics: the series are there, count what happened, and an
unauthenticated scrape shows nothing of any group (names, owners, models, hosts, ids)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.metrics import CACHE_S
from core.registry import jobs as rows
from core.registry.db import session_scope
from core.registry.keys import Caller, create_key
from core.settings import Settings

KEY = "srf_3e721c50_metrics-admin-key"
SERIES = ("srflow_http_request_duration_seconds", "srflow_jobs", "srflow_queue_depth",
          "srflow_workers_alive", "srflow_worker_heartbeat_age_seconds",
          "srflow_running_job_heartbeat_age_seconds", "srflow_running_trainings",
          "srflow_training_ess_per_n")
TRAIN = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 50}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(got: dict, name: str, **labels: str) -> float:
    return float(got[(name, frozenset(labels.items()))])


@pytest.mark.slow
def test_metrics_series_count_requests_and_leak_nothing_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_key=KEY, rate_jobs_burst=1000)
    with TestClient(create_app(settings)) as c:
        with session_scope(settings.db_url) as s:
            alice = create_key(s, user="alice-xq", groups=["lab-alpha-xq"]).key
            bob = create_key(s, user="bob-xq", groups=["lab-beta-xq"]).key
        a = {"Authorization": f"Bearer {alice}"}
        r = c.post("/v1/jobs", headers=a, json={"kind": "train", "spec": TRAIN,
                                                 "model_name": "alpha-secret-model"})
        assert r.status_code == 202, r.text
        queued_id = r.json()["name"].removeprefix("jobs/")
        bad = c.post("/v1/jobs", headers=a, json={"kind": "hmc", "spec": {"L": 24}})
        assert bad.status_code == 422
        for _ in range(3):
            assert c.get("/v1/jobs/no-such-job", headers=a).status_code == 404
        for i in range(5):  # random paths share one label value
            assert c.get(f"/v1/nothing-{i}-xq").status_code == 404
        assert c.get("/v1/jobs", headers={"Authorization": f"Bearer {bob}"}).status_code == 200
        # bob's group has a training running with ESS/N 0.37 on host "host-beta-xq"
        caller = Caller("bob-xq", ("lab-beta-xq",), False, "")
        with session_scope(settings.db_url) as s:
            rows.create_job(s, job_id="job-beta-xq", kind="train", spec={**TRAIN, "method": "uv"},
                            queue="cpu", caller=caller, model_name="beta-secret-model")
            assert rows.claim(s, "job-beta-xq", "tok", "host-beta-xq", 60.0)
            assert rows.heartbeat(s, "job-beta-xq", "tok", {"step": 5, "ess": 0.37})
        beats = tmp_path / "workers"
        beats.mkdir()
        (beats / "host-beta-xq.json").write_text(json.dumps(
            {"hostname": "host-beta-xq", "time": time.time() - 3.0, "pid": 1}))
        assert c.get("/metrics").status_code == 200
        time.sleep(CACHE_S + 0.1)  # past the snapshot cache: what follows is seen
        r = c.get("/metrics")  # no key
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    got = samples(text)
    names = {name for name, _ in got}
    for series in SERIES:
        assert any(n == series or n.startswith(series + "_") for n in names), series
    h = "srflow_http_request_duration_seconds_count"
    assert value(got, h, method="POST", route="/v1/jobs", status="202") == 1
    assert value(got, h, method="POST", route="/v1/jobs", status="422") == 1
    assert value(got, h, method="GET", route="/v1/jobs/{job_id}", status="404") == 3
    assert value(got, h, method="GET", route="<unmatched>", status="404") == 5
    assert value(got, h, method="GET", route="/v1/jobs", status="200") == 1
    assert value(got, h, method="GET", route="/metrics", status="200") == 1  # the first
    assert value(got, "srflow_jobs", kind="train", state="queued") == 1
    assert value(got, "srflow_jobs", kind="train", state="running") == 1
    assert value(got, "srflow_jobs", kind="hmc", state="queued") == 0
    assert value(got, "srflow_queue_depth", queue="cpu") == 1  # the filesystem message
    assert value(got, "srflow_workers_alive") == 1
    assert 3.0 <= value(got, "srflow_worker_heartbeat_age_seconds", stat="min") < 30.0
    assert value(got, "srflow_running_trainings", method="uv") == 1
    assert value(got, "srflow_training_ess_per_n", method="uv", stat="mean") == pytest.approx(0.37)
    assert 0.0 <= value(got, "srflow_running_job_heartbeat_age_seconds") < 30.0
    private = ("alice-xq", "bob-xq", "lab-alpha-xq", "lab-beta-xq", "alpha-secret-model",
               "beta-secret-model", "host-beta-xq", "job-beta-xq", queued_id, "nothing-",
               alice[:12], bob[:12], KEY)
    leaked = [p for p in private if p in text]
    assert leaked == [], leaked


def test_metrics_is_not_in_the_openapi_schema(tmp_path: Path) -> None:
    """The fuzzer and the docs list the versioned API only; /metrics needs no key."""
    with TestClient(create_app(Settings(data_dir=tmp_path, admin_key=KEY))) as c:
        assert "/metrics" not in c.get("/openapi.json").json()["paths"]
        assert c.get("/metrics").status_code == 200


def test_unknown_methods_share_one_label_value(tmp_path: Path) -> None:
    """Before: every method string became a label value (3 000 random methods grew
    /metrics to 5.9 MB, without a key)."""
    with TestClient(create_app(Settings(data_dir=tmp_path, admin_key=KEY))) as c:
        small = len(c.get("/metrics").text)
        for i in range(200):
            c.request(f"XQ{i:03d}METHOD", "/v1/jobs")
            c.request(f"XQ{i:03d}METHOD", f"/v1/nothing-{i}")
        assert c.request("PATCH", "/v1/jobs").status_code == 405
        text = c.get("/metrics").text
    assert "XQ" not in text
    got = samples(text)
    h = "srflow_http_request_duration_seconds_count"
    assert value(got, h, method="other", route="/v1/jobs", status="405") == 200
    assert value(got, h, method="other", route="<unmatched>", status="404") == 200
    assert value(got, h, method="PATCH", route="/v1/jobs", status="405") == 1
    assert len(text) < small + 20_000

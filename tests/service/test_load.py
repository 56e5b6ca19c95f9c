"""bench/load.py, small: 100 clients for 15 s against the Redis deployment
(2 uvicorn workers in Prometheus multiprocess mode + 2 Celery workers + redis-server).
Few new jobs (0.15 a second; the rest of the submissions are replays): each one costs a
fresh worker child a torch import, and the test waits for all of them to succeed."""

from __future__ import annotations

import pytest

from bench.load import run_load
from bench.load_stack import deployment

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_100_clients_no_5xx_no_lost_or_duplicated_jobs_and_metrics_count() -> None:
    with deployment("redis", uvicorn_workers=2, celery_workers=2) as stack:
        s = run_load(stack, clients=100, seconds=15.0, submit_rate=0.15, drain_s=90.0)
        logs = stack.tail_logs() if not s["ok"] else ""
    reg = s["registry"]
    assert s["responses_5xx"] == 0, (s["wrong"], logs)
    assert s["transport_errors"] == 0 and s["wrong_count"] == 0, (s["wrong"], logs)
    assert s["client_counts"]["bad inputs (all)"] >= 10  # sent (46-150 by load); all got 4xx
    assert s["client_counts"]["GET /v1/jobs/{job_id}/events"] > 10
    assert reg["acked_keys"] >= 2 and reg["lost"] == [] and reg["duplicate_acks"] == []
    assert reg["duplicate_rows"] == [] and reg["failed"] == [], (reg, logs)
    assert reg["states"] == {"succeeded": reg["acked_jobs"] + reg["unacked_created"]}
    assert s["client_counts"]["POST /v1/jobs"] > reg["acked_keys"]  # replays were made
    # /metrics, scraped during the run, counted every request of every uvicorn worker
    assert s["scrapes"] >= 3
    server, client = s["server_request_counts"], s["client_counts"]
    assert server["GET /v1/jobs/{job_id}/events"] == client["GET /v1/jobs/{job_id}/events"]
    assert server["GET /v1/ensembles/{ensemble_id}"] == client["GET /v1/ensembles/{id}"]
    assert server["GET /v1/jobs/{job_id}"] > client["GET /v1/jobs/{job_id}"]  # + 404s
    assert s["server_jobs"]["hmc/succeeded"] >= 2
    assert s["ok"], s["table"]

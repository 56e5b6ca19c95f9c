"""The event stream through the dashboard is the API's own, and leaving the page ends it
(the per-key stream slot is given back), and the charts draw."""

from __future__ import annotations

import time

import numpy as np

from app.ui import charts
from tests.ui.lab import Lab, csrf_of, idem_of, sign_in


def test_events_are_the_apis_and_a_closed_page_frees_its_slot(lab: Lab) -> None:
    c = lab.user("alice")
    sign_in(c, lab.keys["alice"])
    page = c.get("/ui/submit/hmc").text
    r = c.post("/ui/submit/hmc", data={"spec.L": "4", "spec.kappa": "0.2", "spec.lam": "0",
                                       "spec.n_samples": "8", "csrf_token": csrf_of(page),
                                       "idempotency_key": idem_of(page)})
    job_url = r.headers["location"]
    job_id = job_url.rsplit("/", 1)[1]
    state = lab.client.app.state  # type: ignore[attr-defined]
    with c.stream("GET", f"{job_url}/events") as s:
        assert s.status_code == 200
        assert s.headers["content-type"].startswith("text/event-stream")
        lines = []
        for line in s.iter_lines():
            lines.append(line)
            if line == "":
                break
        assert lines[0] == "event: progress"  # queued: no worker in these tests
        assert f'"name": "jobs/{job_id}"' in lines[1] and '"state": "queued"' in lines[1]
        assert sum(getattr(state, "sse_streams", {}).values()) == 1
    deadline = time.monotonic() + 10
    while getattr(state, "sse_streams", {}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not getattr(state, "sse_streams", {})  # the API's stream ended with the page's


def test_charts_are_svg_with_a_title() -> None:
    curve = [{"step": i, "ess": 0.1 * i, "loss": -i, "coarse_kappa": 0.2 + 0.001 * i,
              "fine_kappa": 0.25} for i in range(1, 6)]
    svg = charts.training_curve(curve).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "Training curve" in svg and "ESS/N" in svg and "κ_L (coarse)" in svg
    versions = [{"theory": {"kappa": 0.25, "L": 8}, "ess": 0.4},
                {"theory": {"kappa": 0.25, "L": 8}, "ess": 0.6},
                {"theory": {"kappa": 0.3, "L": 16}, "ess": None}]
    svg = charts.coupling_map(versions).decode()
    assert "0.60" in svg and "0.40" not in svg  # the best version per (κ, L)
    svg = charts.magnetisation_histogram(np.linspace(-1, 1, 50), 100).decode()
    assert "50 of 100 configurations" in svg
    assert "no training curve" in charts.training_curve([]).decode()

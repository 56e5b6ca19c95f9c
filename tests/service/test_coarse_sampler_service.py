"""HTTP: ``coarse_sampler="cluster"`` on a baseline model (no coarse lattice) is a 422
naming spec.coarse_sampler before anything is queued."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.flowfiles import CONFIG, files_of, write_flow
from tests.service.processes import Service
from tests.service.sharing.uploading import upload_multipart

pytestmark = [pytest.mark.service]
BASELINE = {**CONFIG, "kind": "baseline", "coarse_L": None, "levels": 0, "kernel_size": None,
            "method": "baseline"}


def test_cluster_coarse_sampler_on_a_baseline_model_is_422(redis_service: Service,
                                                           tmp_path: Path) -> None:
    d = write_flow(tmp_path / "b", config=BASELINE)
    with redis_service.client() as c:
        r = upload_multipart(c, {k: p.read_bytes() for k, p in files_of(d).items()},
                             "baseline-coarse-sampler")
        assert r.status_code in (200, 201), r.text
        before = c.get("/v1/jobs", params={"page_size": 1000}).json()["operations"]
        r = c.post("/v1/jobs", json={"kind": "sample", "spec": {
            "model": "baseline-coarse-sampler/1", "n_samples": 10, "coarse_sampler": "cluster"}})
        after = c.get("/v1/jobs", params={"page_size": 1000}).json()["operations"]
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert [e["field"] for e in p["errors"]] == ["spec.coarse_sampler"], p
    assert "baseline model" in p["detail"]
    assert len(after) == len(before)  # nothing was queued

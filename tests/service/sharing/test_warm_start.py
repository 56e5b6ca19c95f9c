"""init_from "nearest": the closest visible version with the same architecture is chosen,
pinned in the job's spec, loaded by the training code, and recorded as the parent."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.registry.flowfiles import CONFIG, write_flow
from tests.service.helpers import follow_to_success
from tests.service.processes import Service
from tests.service.sharing.members import make_member
from tests.service.sharing.uploading import upload_zip, zip_dir

pytestmark = [pytest.mark.service, pytest.mark.slow]
ARCH = {**CONFIG, "kernel_size": 3, "n_freq": 11, "n_time": 10, "bond_freq": 20,
        "bond_time": 20, "fine_L": 8, "levels": 1}


def test_nearest_parent_is_chosen_and_recorded(redis_service: Service, tmp_path: Path) -> None:
    svc, tag = redis_service, uuid.uuid4().hex[:6]
    user = make_member(svc, f"gw-{tag}")
    stranger = make_member(svc, f"gx-{tag}")
    candidates = {  # name: (κ, λ, config overrides, uploader, visibility)
        f"far-{tag}": (0.20, 0.010, {}, user, "group"),
        f"near-{tag}": (0.245, 0.011, {}, user, "group"),
        f"other-arch-{tag}": (0.25, 0.010, {"n_freq": 5}, user, "group"),
        f"hidden-{tag}": (0.25, 0.010, {}, stranger, "private"),
    }
    for name, (kappa, lam, extra, who, vis) in candidates.items():
        cfg = {**ARCH, **extra, "theory": {"kappa": kappa, "lam": lam}}
        with who.client(svc) as c:
            r = upload_zip(c, zip_dir(write_flow(tmp_path / name, config=cfg)), name, vis)
            assert r.status_code == 201, r.text
    spec = {"method": "ir", "dim": 2, "L": 16, "kappa": 0.25, "lam": 0.01, "steps": 3,
            "kernel_size": 3,  # the uploaded candidates' kernel (not the default)
            "batch": 16, "seed": 2, "init_from": "nearest"}
    with user.client(svc) as c:
        r = c.post("/v1/jobs", json={"kind": "train", "spec": spec,
                                     "model_name": f"child-{tag}"})
        assert r.status_code == 202, r.text
        bad = c.post("/v1/jobs", json={"kind": "train", "spec": {**spec, "dim": 3, "L": 8}})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "spec.init_from"
        hidden = c.post("/v1/jobs", json={"kind": "train",
                                          "spec": {**spec, "init_from": f"hidden-{tag}/1"}})
        assert hidden.status_code == 422
    job_id = r.json()["name"].removeprefix("jobs/")
    done = follow_to_success(svc, job_id)
    assert done["metadata"]["spec"]["init_from"] == f"near-{tag}/1"
    with user.client(svc) as c:
        mv = c.get(f"/v1/models/child-{tag}/versions/1").json()
    assert mv["parent"] == f"near-{tag}/1" and mv["theory"]["L"] == 16

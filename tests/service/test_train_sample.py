"""train → registry → sample → download, over real HTTP, with Redis and embedded."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import h5py
import pytest

from tests.service.helpers import (
    check_ensemble_download,
    follow_to_success,
    submit,
    wait_state,
)
from tests.service.processes import Service

pytestmark = [pytest.mark.service, pytest.mark.slow]

TRAIN = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 10,
         "batch": 16, "seed": 1}


def train_sample_roundtrip(svc: Service, tmp: Path, name: str) -> None:
    job_id = submit(svc, "train", TRAIN, model_name=name)
    final = follow_to_success(svc, job_id)
    assert final["response"]["model"]["name"] == name
    version = final["response"]["model"]["version"]
    with svc.client() as c:
        mv = c.get(f"/v1/models/{name}/versions/{version}").json()
        assert mv["job_id"] == job_id and mv["method"] == "ir"
        assert mv["theory"]["L"] == 8 and mv["theory"]["action"].startswith("S = Σ")
        assert mv["ess"] is not None and 0.0 < mv["ess"] <= 1.0
        assert mv["couplings"], mv
        assert len(mv["curve"]) >= 2
        assert set(mv["files"]) >= {"model.safetensors", "config.json"}
        found = c.get("/v1/models", params={"dim": 2, "L": 8, "method": "ir"}).json()
        assert f"{name}/{version}" in [v["ref"] for v in found["model_versions"]]
        r = c.put(f"/v1/models/{name}/aliases/best", json={"version": version})
        assert r.status_code == 200 and r.json()["aliases"] == {"best": version}
        z = c.get(f"/v1/models/{name}/versions/{version}/download")
        assert z.status_code == 200
        with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
            assert {"model.safetensors", "config.json", "README.md"} <= set(zf.namelist())
            weights = hashlib.sha256(zf.read("model.safetensors")).hexdigest()
            assert weights == mv["sha256"] == z.headers["x-weights-sha256"]
            assert f"# {name} — version {version}" in zf.read("README.md").decode()
    sample_id = submit(svc, "sample", {"model": f"{name}@best", "n_samples": 64, "chains": 8})
    done = follow_to_success(svc, sample_id)
    ens_id = done["response"]["ensemble"]["id"]
    link = {"name": name, "version": version, "ref": f"{name}/{version}",
            "url": f"/v1/models/{name}/versions/{version}"}  # outputs with URLs
    assert done["response"]["model"] == link
    assert done["response"]["ensemble"]["url"] == f"/v1/ensembles/{ens_id}"
    meta = check_ensemble_download(svc, ens_id, tmp)
    assert meta["model"] == link and meta["n"] == 64
    with h5py.File(tmp / f"{ens_id}.h5", "r") as f:
        assert f.attrs["model_name"] == name and int(f.attrs["model_version"]) == version
        assert f.attrs["srflow_job_id"] == sample_id


def test_train_then_sample_with_redis(redis_service: Service, tmp_path: Path) -> None:
    train_sample_roundtrip(redis_service, tmp_path, "ir-test-redis")


def test_train_then_sample_embedded(embedded_service: Service, tmp_path: Path) -> None:
    train_sample_roundtrip(embedded_service, tmp_path, "ir-test-embedded")


def test_cancel_running_training_registers_no_model(redis_service: Service) -> None:
    spec = {**TRAIN, "steps": 100000}
    job_id = submit(redis_service, "train", spec, model_name="ir-cancelled")
    wait_state(redis_service, job_id,
               lambda op: (op["metadata"]["progress"] or {}).get("step", 0) >= 1, 120)
    with redis_service.client() as c:
        assert c.post(f"/v1/jobs/{job_id}:cancel").status_code == 200
    op = wait_state(redis_service, job_id, lambda op: op["done"], 60)
    assert op["metadata"]["state"] == "cancelled"
    assert op["metadata"]["progress"]["step"] < 1000
    with redis_service.client() as c:
        assert c.get("/v1/models/ir-cancelled").status_code == 404

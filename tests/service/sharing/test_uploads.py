"""POST /v1/models: refusals leave no trace; a download re-uploads elsewhere and samples."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.registry.flowfiles import CONFIG, tensors_for, write_flow
from tests.service.helpers import follow_to_success
from tests.service.processes import Service
from tests.service.sharing.members import UPLOAD_LIMIT, blob_files
from tests.service.sharing.uploading import upload_multipart, upload_zip, zip_dir

pytestmark = [pytest.mark.service, pytest.mark.slow]
PROBLEM = "application/problem+json"


def _state(svc: Service) -> tuple[list[str], list[Path], list[Path]]:
    with svc.client() as c:
        refs = sorted(v["ref"] for v in c.get("/v1/models").json()["model_versions"])
    leftovers = sorted((svc.data_dir / "uploads").rglob("*"))
    return refs, blob_files(svc.data_dir), leftovers


def _bad_flows(tmp: Path) -> dict[str, bytes]:
    good = write_flow(tmp / "good")
    out = {}
    d = write_flow(tmp / "pickle")
    (d / "model.safetensors").write_bytes(pickle.dumps({"w": [1.0] * 10}, protocol=4))
    out["pickle"] = zip_dir(d)
    d = write_flow(tmp / "pt")
    (d / "model.safetensors").unlink()
    (d / "model.pt").write_bytes(pickle.dumps({"w": 1}))
    out["pt"] = zip_dir(d)
    d = write_flow(tmp / "trunc")
    raw = (good / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(raw[: len(raw) - 100])
    out["truncated"] = zip_dir(d)
    t = tensors_for(CONFIG)
    t["flow.levels.0.cnf.field.weight_time"] = np.zeros((4, 7), np.float32)
    out["shape"] = zip_dir(write_flow(tmp / "shape", tensors=t))
    out["unknown-field"] = zip_dir(write_flow(tmp / "unknown", config={**CONFIG, "depth": 3},
                                              tensors=tensors_for(CONFIG)))
    return out


EXPECT = {"pickle": ("model.safetensors", "pickle"), "pt": ("model.pt", "pickled"),
          "truncated": ("model.safetensors", "truncated"),
          "shape": ("model.safetensors:flow.levels.0.cnf.field.weight_time", "contradicts"),
          "unknown-field": ("config.json:depth", "unknown field")}


def test_refused_uploads_change_nothing(small_embedded: Service, tmp_path: Path) -> None:
    svc = small_embedded
    with svc.client() as c:  # the server works: a good upload is stored
        good = upload_zip(c, zip_dir(write_flow(tmp_path / "ok")), "baseline-ok")
        assert good.status_code == 201, good.text
    before = _state(svc)
    assert before[0] == ["baseline-ok/1"] and len(before[1]) == 3 and before[2] == []
    with svc.client() as c:
        for case, body in _bad_flows(tmp_path).items():
            r = upload_zip(c, body, f"bad-{case}")
            assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (case, r.text)
            field, needle = EXPECT[case]
            assert r.json()["errors"][0]["field"].startswith(field), (case, r.json())
            assert needle in r.json()["detail"], (case, r.json())
        # the same refusal as multipart, and an upload into a model name with bad config
        files = {p.name: p.read_bytes() for p in write_flow(tmp_path / "mp").iterdir()}
        files["config.json"] = json.dumps({**CONFIG, "depth": 3}).encode()
        r = upload_multipart(c, files, "bad-multipart")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "config.json:depth"

        def endless() -> Iterator[bytes]:
            for _ in range(UPLOAD_LIMIT // 65536 + 50):
                yield b"\0" * 65536

        # chunked, no Content-Length: cut off while streaming
        r = c.post("/v1/models", params={"name": "bad-huge"}, content=endless(),
                   headers={"Content-Type": "application/zip"})
        assert "content-length" not in r.request.headers
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
        assert f"max_upload_bytes={UPLOAD_LIMIT}" in r.json()["detail"]
        r = c.post("/v1/models", params={"name": "bad-huge2"}, content=b"\0" * (UPLOAD_LIMIT + 1),
                   headers={"Content-Type": "application/zip"})
        assert r.status_code == 413 and "max_upload_bytes" in r.json()["detail"]
        r = c.post("/v1/models", params={"name": "bad-type"}, content=b"{}",
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 415
    assert _state(svc) == before


def _real_flow(d: Path) -> Path:
    """A flow written by the library itself (build_flow + save_flow)."""
    from core.physics.flows.config import FlowConfig
    from core.physics.flows.rg_flow import build_flow
    from core.physics.io.flow_files import save_flow

    cfg = FlowConfig.model_validate({**CONFIG, "kernel_size": 3})
    save_flow(d, build_flow(cfg), cfg, {"coarse_kappa": 0.25, "coarse_lam": 0.01,
                                        "fine_kappa": 0.25, "fine_lam": 0.01},
              {"ess": 0.1, "curve": []})
    return d


def test_download_uploads_unchanged_into_a_second_server_and_samples(
        redis_service: Service, small_embedded: Service, tmp_path: Path) -> None:
    d = _real_flow(tmp_path / "flow")
    files = {p.name: p.read_bytes() for p in d.iterdir()}
    with redis_service.client() as c:
        r = upload_multipart(c, files, "shared-flow", "public")
        assert r.status_code == 201, r.text
        v1 = r.json()
        assert v1["job_id"] is None and v1["theory"]["L"] == 8 and v1["method"] == "ir"
        assert v1["couplings"]["coarse"] == {"kappa": 0.25, "lam": 0.01}
        z = c.get(f"/v1/models/shared-flow/versions/{v1['version']}/download")
        assert z.status_code == 200
    with zipfile.ZipFile(io.BytesIO(z.content)) as zf:
        assert zf.read("model.safetensors") == files["model.safetensors"]
    with small_embedded.client() as c:
        r = upload_zip(c, z.content, "imported-flow")  # the download, byte for byte
        assert r.status_code == 201, r.text
        v2 = r.json()
        assert v2["sha256"] == v1["sha256"] and v2["config"] == v1["config"]
        assert v2["metrics"]["uploaded_from"]["ref"] == f"shared-flow/{v1['version']}"
        r = c.post("/v1/jobs", json={"kind": "sample", "spec": {
            "model": f"imported-flow/{v2['version']}", "n_samples": 32, "chains": 4}})
        assert r.status_code == 202, r.text
    done = follow_to_success(small_embedded, r.json()["name"].removeprefix("jobs/"))
    assert done["response"]["model"] == {
        "name": "imported-flow", "version": v2["version"], "ref": f"imported-flow/{v2['version']}",
        "url": f"/v1/models/imported-flow/versions/{v2['version']}"}

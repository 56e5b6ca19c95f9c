"""What finished jobs show, over HTTP, in process (the worker's own ``execute`` with the
computation replaced): registry references instead of server paths, a scan that falls
back to another name like a train job, and an ensemble's HDF5 file without the name of a
model its reader may not see (with an honest sha256, ETag and Range)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import core.jobs.run
from core.jobs.scan_job import PointResult, ScanJobResult
from core.physics.io.ensemble import read_ensemble
from tests.registry.flowfiles import CONFIG, write_flow
from tests.service.sharing.inprocess import ADMIN, HMC, Lab, ensemble_file, fake_jobs, running_lab

SCAN = {"method": "ir", "dim": 2, "L": 8, "kappa": [0.25], "lam": [0.01],
        "steps_per_point": 1, "n_samples": 16}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as lab:
        yield lab


def test_finished_jobs_name_registry_references_not_server_paths(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: summary.model and summary.out were <data-dir>/work/<id>/… paths, shown to
    every member and in GET /v1/ensembles/{id}."""
    fake_jobs(monkeypatch, tmp_path)
    alice, carol = lab.member("alice", "lab-a"), lab.member("carol", "lab-a")
    root = str(lab.settings.root)
    train = lab.finish(lab.submit(alice), carol)
    assert train["metadata"]["state"] == "succeeded", train
    ref = train["response"]["model"]["ref"]
    assert train["response"]["summary"]["model"] == ref
    hmc = lab.finish(lab.submit(alice, "hmc", HMC), carol)
    ens_id = hmc["response"]["ensemble"]["id"]
    assert hmc["response"]["summary"]["out"] == ens_id
    ens = lab.get(carol, f"/v1/ensembles/{ens_id}").json()
    assert ens["summary"]["out"] == ens_id
    for text in (str(train), str(hmc), str(ens), lab.get(alice, "/v1/jobs").text):
        assert root not in text and "/work/" not in text


def test_a_scan_falls_back_to_a_name_of_its_own_like_a_train_job(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a scan failed ("registering the outputs failed: NameRefused") when another
    member held the group's default name privately."""
    alice, bob = lab.member("alice", "lab-a"), lab.member("bob", "lab-a")
    default = "lab-a.ir-d2-L8-k0.25-l0.01"
    assert lab.upload(alice, default, "private", write_flow(tmp_path / "a")).status_code == 201
    work = tmp_path / "scan" / "point-00"
    point_dir = write_flow(work / "model", config={**CONFIG, "parent": str(work / "prev")})
    ens = ensemble_file(tmp_path / "scan" / "point-00" / "ensemble.h5", str(point_dir))
    point = PointResult(index=0, kappa=0.25, lam=0.01, ess=0.5, train_ess=0.5,
                        couplings={"coarse": {"kappa": 0.24, "lam": 0.011},
                                   "fine": {"kappa": 0.25, "lam": 0.01}},
                        acceptance=0.6, observables={"chi": {"mean": 1.0, "error": 0.1,
                                                             "tau_int": 0.5}},
                        model_dir=point_dir, ensemble=ens, warm_started=False, steps=1,
                        train_seconds=1.0, sample_seconds=1.0)
    result = ScanJobResult("scan", {"points": [], "stopped": "complete", "n_points": 1},
                           points=(point,), stopped="complete", n_points=1)
    monkeypatch.setattr(core.jobs.run, "run_job", lambda *_, **__: result)
    op = lab.finish(lab.submit(bob, "scan", SCAN), bob)
    assert op["metadata"]["state"] == "succeeded", op
    record = op["response"]["summary"]["points"][0]
    assert record["model"] == "lab-a.bob.ir-d2-L8-k0.25-l0.01/1"
    assert [v["owner"] for v in lab.get(alice, f"/v1/models/{default}").json()["versions"]] \
        == ["alice"]
    assert str(lab.settings.root) not in str(op) and str(tmp_path) not in str(op)
    version = lab.get(bob, f"/v1/models/{record['model'].replace('/', '/versions/')}")
    assert version.status_code == 200 and str(tmp_path) not in version.text
    download = lab.get(bob, f"/v1/models/{record['model'].replace('/', '/versions/')}"
                       "/download")
    assert download.status_code == 200 and str(tmp_path).encode() not in download.content


def test_an_ensembles_file_hides_the_name_of_a_model_its_reader_cannot_see(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the HDF5 attributes named the source model to every reader of the
    ensemble, also after the model version was made private."""
    fake_jobs(monkeypatch, tmp_path)
    alice, carol = lab.member("alice", "lab-a"), lab.member("carol", "lab-a")
    bob = lab.member("bob", "lab-b")
    secret = "alice-secret-flow"
    assert lab.upload(alice, secret, "group", write_flow(tmp_path / "a")).status_code == 201
    op = lab.finish(lab.submit(carol, "sample", {"model": f"{secret}/1", "n_samples": 16},
                               visibility="public"))
    assert op["metadata"]["state"] == "succeeded", op
    ens_id = op["response"]["ensemble"]["id"]
    r = lab.client.patch(f"/v1/models/{secret}/versions/1", json={"visibility": "private"},
                         headers=lab.auth(alice))
    assert r.status_code == 200, r.text
    url = f"/v1/ensembles/{ens_id}/download"
    for key in (alice, ADMIN):  # may see the model: the file as written
        whole = lab.get(key, url)
        assert whole.status_code == 200 and secret.encode() in whole.content
        assert lab.get(key, f"/v1/ensembles/{ens_id}").json()["sha256"] == \
            hashlib.sha256(whole.content).hexdigest()
    for key in (bob, carol):  # may see the ensemble but not the model
        meta = lab.get(key, f"/v1/ensembles/{ens_id}").json()
        assert meta["model"]["redacted"] is True
        if key == bob:  # carol owns the job: she sees its result as it was registered
            job = lab.get(key, f"/v1/jobs/{ens_id}").json()["response"]["ensemble"]
            assert job["id"] == ens_id and job["sha256"] is None and job["size"] is None
        whole = lab.get(key, url)
        assert whole.status_code == 200
        body = whole.content
        assert secret.encode() not in body and b"model_ref" not in body
        sha = hashlib.sha256(body).hexdigest()
        assert sha == meta["sha256"] and len(body) == meta["size"]
        assert whole.headers["etag"] == f'"{sha}"'
        part = lab.client.get(url, headers={**lab.auth(key), "Range": "bytes=100-1123"})
        assert part.status_code == 206 and part.content == body[100:1124]
        assert part.headers["content-range"] == f"bytes 100-1123/{len(body)}"
        got = tmp_path / f"{key[-6:]}.h5"
        got.write_bytes(body)
        ensemble = read_ensemble(got)  # still a valid ensemble, checksums and all
        assert ensemble.configs.shape == (16, 8, 8) and ensemble.meta.model_id is None
        assert ensemble.meta.sampler == {"n_samples": 16}
        assert math.isclose(ensemble.meta.kappa, 0.25)

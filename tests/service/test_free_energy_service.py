"""log Z and the pyerrors export over HTTP, in process (the API, the worker's own
``execute``, the real jobs): a sample job's summary, the ensemble, the model card and the
dashboard show log Z, f and the caveats; GET /v1/ensembles/{id}/pyerrors hands pyerrors
the series (one Monte Carlo ensemble per job); an old file without series is a 409 that
says what to do."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyerrors as pe
import pytest
from fastapi.testclient import TestClient

from core.client import SrflowClient
from core.physics.stats.gamma import gamma_method
from tests.registry.flowfiles import write_flow
from tests.service.sharing.inprocess import ADMIN, PROBLEM, Lab, fake_jobs, running_lab
from tests.ui.lab import sign_in

HMC = {"dim": 2, "L": 4, "kappa": 0.2, "lam": 0.01, "n_samples": 256, "chains": 4,
       "n_therm": 50, "thin": 1}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as lab:
        yield lab


def _pyerrors(lab: Lab, key: str, ens_id: str, tmp_path: Path) -> dict:
    r = lab.get(key, f"/v1/ensembles/{ens_id}/pyerrors")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert f'filename="srflow-{ens_id}.json.gz"' in r.headers["content-disposition"]
    path = tmp_path / f"{ens_id}.json.gz"
    path.write_bytes(r.content)
    return pe.input.json.load_json(str(path), verbose=False, full_output=True)


def test_hmc_chains_export_as_replicas_of_one_ensemble(lab: Lab, tmp_path: Path) -> None:
    alice = lab.member("alice", "lab-a")
    op = lab.finish(lab.submit(alice, "hmc", HMC), alice)
    assert op["metadata"]["state"] == "succeeded", op
    ens_id = op["response"]["ensemble"]["id"]
    out = _pyerrors(lab, alice, ens_id, tmp_path)
    (chain,) = out["obsdata"]
    m = next(o for o in chain if o.tag == "magnetization")
    assert m.names == [f"srflow-{ens_id}|c{c:03d}" for c in range(4)]
    obs = op["response"]["summary"]["observables"]["magnetization"]
    assert m.value == pytest.approx(obs["mean"], abs=1e-12)
    # one replica: pyerrors' Γ-method is srflow's to rounding
    one = pe.Obs([m.deltas[m.names[0]] + m.r_values[m.names[0]]], ["x|r0"])
    one.gamma_method(S=1.5)
    assert one.dvalue == pytest.approx(gamma_method(one.deltas["x|r0"]).error, rel=1e-9)
    assert lab.get(lab.member("eve", "lab-b"), f"/v1/ensembles/{ens_id}/pyerrors"
                   ).status_code == 404  # private: no leak
    client = SrflowClient("http://testserver", alice)  # srflow download --pyerrors
    client.http = TestClient(lab.client.app, headers=lab.auth(alice))
    got = client.download_pyerrors(ens_id, tmp_path / "dl" / "x.json.gz")
    again = pe.input.json.load_json(str(got.path), verbose=False)
    assert got.size > 0 and again[0].value == chain[0].value  # one structure: unpacked


@pytest.mark.slow
def test_sample_job_shows_log_z_everywhere(lab: Lab, tmp_path: Path) -> None:
    alice = lab.member("alice", "lab-a")
    assert lab.upload(alice, "fe-flow", "group", write_flow(tmp_path / "f")).status_code == 201
    op = lab.finish(lab.submit(alice, "sample", {"model": "fe-flow/1", "n_samples": 128,
                                                 "chains": 8}), alice)
    assert op["metadata"]["state"] == "succeeded", op
    fe = op["response"]["summary"]["free_energy"]
    assert fe["f"] == pytest.approx(-fe["log_z"] / 64) and fe["caveats"]  # untrained: named
    ens_id = op["response"]["ensemble"]["id"]
    ens = lab.get(alice, f"/v1/ensembles/{ens_id}").json()
    assert ens["summary"]["free_energy"]["log_z"] == fe["log_z"]
    out = _pyerrors(lab, alice, ens_id, tmp_path)
    chain, weights = out["obsdata"]
    assert chain[0].names == [f"srflow-{ens_id}|chain"]
    assert weights[0].names == [f"srflow-{ens_id}|proposals"] and weights[0].tag == "weight"
    card = zipfile.ZipFile(io.BytesIO(lab.get(
        alice, "/v1/models/fe-flow/versions/1/download").content)).read("README.md").decode()
    assert "## Free energy" in card and f"| {ens_id} | 128 |" in card
    assert "low_ess" in card
    ui = TestClient(lab.client.app, follow_redirects=False)  # the dashboard, signed in
    sign_in(ui, alice)
    for page in (f"/ui/ensembles/{ens_id}", f"/ui/jobs/{op['name'].removeprefix('jobs/')}"):
        html = ui.get(page).text
        assert 'id="h-fe">Free energy' in html and 'data-field="log_z"' in html, page
        assert "<code>low_ess</code>" in html, page
    r = ui.get(f"/ui/ensembles/{ens_id}/pyerrors")
    assert r.status_code == 200 and r.content[:2] == b"\x1f\x8b"  # gzip


def test_old_ensembles_say_why_they_cannot_be_exported(lab: Lab, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake_jobs(monkeypatch, tmp_path)  # writes an ensemble without series, as before
    op = lab.finish(lab.submit(ADMIN, "hmc", {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01,
                                              "n_samples": 16}))
    ens_id = op["response"]["ensemble"]["id"]
    r = lab.get(ADMIN, f"/v1/ensembles/{ens_id}/pyerrors")
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
    assert "run its job again" in r.json()["detail"]
    assert r.json()["type"] == "/problems/series-missing"
    assert lab.get(ADMIN, "/v1/ensembles/nope/pyerrors").status_code == 404

"""Ownership and visibility over HTTP, in process: the API app under TestClient, and the worker's
own ``execute`` with the training replaced by a flow written to disk, so each test runs
the real submit → finish → register path in about a second without starting servers.

Each test reproduces one finding of the review and fails on the code before the fix."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

import core.jobs.run
from app.main import create_app
from cli import service as cli_service
from core.registry.db import session_scope
from core.registry.keys import authenticate
from core.settings import Settings
from tests.registry.flowfiles import CONFIG, tensors_for, write_flow
from tests.service.sharing.uploading import zip_dir
from worker.runner import execute

ADMIN = "srf_5ec0a11d_security-tests-admin"
SPEC = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 1}
OLD_DEFAULT = "ir-d2-L8-k0.25-l0.01"  # what a job without model_name used to register as


@dataclass
class Api:
    client: TestClient
    settings: Settings

    def as_(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def member(self, name: str, group: str, **key_body: Any) -> str:
        h = self.as_(ADMIN)
        r = self.client.post("/v1/groups", json={"name": group}, headers=h)
        assert r.status_code in (201, 409), r.text
        r = self.client.post("/v1/users", json={"name": name, "groups": [group]}, headers=h)
        assert r.status_code == 201, r.text
        r = self.client.post(f"/v1/users/{name}/keys", json=key_body or None, headers=h)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def upload(self, key: str, name: str, vis: str, flow: Path) -> Any:
        return self.client.post("/v1/models", params={"name": name, "visibility": vis},
                                content=zip_dir(flow),
                                headers={**self.as_(key), "Content-Type": "application/zip"})

    def submit(self, key: str, **extra: Any) -> str:
        r = self.client.post("/v1/jobs", json={"kind": "train", "spec": SPEC, **extra},
                             headers=self.as_(key))
        assert r.status_code == 202, r.text
        return str(r.json()["name"]).removeprefix("jobs/")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN)
    with TestClient(create_app(settings)) as c:
        yield Api(c, settings)


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every job 'trains' by handing back this flow directory (the attacker's weights)."""
    flow = write_flow(tmp_path / "trained")

    def fake_run_job(*_: Any, **__: Any) -> Any:
        return SimpleNamespace(summary={}, ensemble=None, model_dir=str(flow))

    monkeypatch.setattr(core.jobs.run, "run_job", fake_run_job)
    return flow


def _finish(api: Api, job_id: str) -> dict[str, Any]:
    execute(job_id, api.settings, token=f"t-{job_id}", hostname="test")
    r = api.client.get(f"/v1/jobs/{job_id}", headers=api.as_(ADMIN))
    return dict(r.json())


def test_a_job_without_a_name_leaves_another_groups_model_alone(
        api: Api, trained: Path, tmp_path: Path) -> None:
    alice, bob = api.member("alice", "lab-a"), api.member("bob", "lab-b")
    own = write_flow(tmp_path / "alice-flow", tensors=tensors_for(CONFIG, seed=1))
    assert api.upload(alice, OLD_DEFAULT, "private", own).status_code == 201
    sha = api.client.get(f"/v1/models/{OLD_DEFAULT}/versions/1",
                         headers=api.as_(alice)).json()["sha256"]
    op = _finish(api, api.submit(bob, visibility="public"))
    assert op["metadata"]["state"] == "succeeded", op
    assert op["response"]["model"]["sha256"] != sha  # the weights differ: a real test
    model = api.client.get(f"/v1/models/{OLD_DEFAULT}", headers=api.as_(alice)).json()
    assert [(v["version"], v["owner"]) for v in model["versions"]] == [(1, "alice")]
    assert model["latest_version"] == 1 and model["versions"][0]["sha256"] == sha
    assert op["response"]["model"]["name"] == "lab-b.ir-d2-L8-k0.25-l0.01"


def test_an_explicit_name_is_checked_again_when_the_job_finishes(
        api: Api, trained: Path, tmp_path: Path) -> None:
    alice, bob = api.member("alice", "lab-a"), api.member("bob", "lab-b")
    job_id = api.submit(bob, model_name="shared-x")  # free when bob submits
    assert api.upload(alice, "shared-x", "private", write_flow(tmp_path / "a")).status_code == 201
    op = _finish(api, job_id)
    assert op["metadata"]["state"] == "failed" and op["error"]["details"] == [
        {"type": "NameRefused"}], op
    assert "choose another name" in op["error"]["message"]
    versions = api.client.get("/v1/models/shared-x", headers=api.as_(alice)).json()["versions"]
    assert [v["owner"] for v in versions] == ["alice"]


def test_an_invisible_models_name_answers_404_not_taken(api: Api, tmp_path: Path) -> None:
    alice, bob = api.member("alice", "lab-a"), api.member("bob", "lab-b")
    flow = write_flow(tmp_path / "f")
    assert api.upload(alice, "secret-m", "private", flow).status_code == 201
    for r in (api.upload(bob, "secret-m", "private", flow),
              api.client.post("/v1/jobs", json={"kind": "train", "spec": SPEC,
                                                "model_name": "secret-m"},
                              headers=api.as_(bob))):
        assert r.status_code == 404, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "taken" not in r.text and "alice" not in r.text and "lab-a" not in r.text
    assert api.client.get("/v1/models/secret-m", headers=api.as_(bob)).status_code == 404


def test_a_model_patch_does_not_publish_other_members_versions(
        api: Api, tmp_path: Path) -> None:
    alice, carol = api.member("alice", "lab-a"), api.member("carol", "lab-a")
    bob = api.member("bob", "lab-b")
    flow = write_flow(tmp_path / "f")
    assert api.upload(alice, "m", "group", flow).status_code == 201
    assert api.upload(carol, "m", "private", flow).status_code == 201  # carol's v2
    r = api.client.patch("/v1/models/m", json={"visibility": "public"}, headers=api.as_(alice))
    assert r.status_code == 200, r.text
    assert api.client.get("/v1/models/m/versions/1", headers=api.as_(bob)).status_code == 200
    assert api.client.get("/v1/models/m/versions/2", headers=api.as_(bob)).status_code == 404
    assert [v["version"] for v in api.client.get("/v1/models/m", headers=api.as_(bob))
            .json()["versions"]] == [1]
    r = api.client.patch("/v1/models/m/versions/2", json={"visibility": "public"},
                         headers=api.as_(alice))  # alice sees a private v2? no: 404
    assert r.status_code == 404
    r = api.client.patch("/v1/models/m/versions/2", json={"visibility": "public"},
                         headers=api.as_(carol))
    assert r.status_code == 200 and r.json()["visibility"] == "public"
    assert api.client.get("/v1/models/m/versions/2", headers=api.as_(bob)).status_code == 200


def test_a_key_cannot_mint_a_key_that_outlives_it(api: Api) -> None:
    dave = api.member("dave", "lab-a", expires_in_days=1)
    mine = api.client.get("/v1/users/dave", headers=api.as_(dave)).json()["keys"]
    bound = mine[0]["expires_at"]
    assert bound is not None
    for body in (None, {"expires_in_days": 365}):
        r = api.client.post("/v1/users/dave/keys", json=body, headers=api.as_(dave))
        assert r.status_code == 201, r.text
        assert r.json()["expires_at"] == bound
        keys = api.client.get("/v1/users/dave", headers=api.as_(dave)).json()["keys"]
        assert keys[-1]["expires_at"] == bound  # stored so, not only reported


def test_a_revoked_admin_key_stays_revoked_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", admin_key=ADMIN)
    h = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/jobs", headers=h).status_code == 200
        assert c.delete(f"/v1/keys/{ADMIN[4:12]}", headers=h).status_code == 204
        assert c.get("/v1/jobs", headers=h).status_code == 401
    with TestClient(create_app(settings)) as c:  # a restart with the same environment
        assert c.get("/v1/jobs", headers=h).status_code == 401


def test_the_first_admin_key_goes_to_a_private_file_not_the_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.root.mkdir(parents=True)
    cli_service._first_key(settings)
    err = capsys.readouterr().err
    path = settings.root / "admin-key"
    key = path.read_text().strip()
    assert key.startswith("srf_") and key not in err and str(path) in err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with session_scope(settings.db_url) as s:
        caller = authenticate(s, key)
        assert caller is not None and caller.is_admin


def test_a_failed_jobs_error_shows_no_server_paths(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = api.member("alice", "lab-a")
    secret = api.settings.work_dir / "j" / "checkpoint.pt"

    def broken(*_: Any, **__: Any) -> Any:
        raise FileNotFoundError(f"[Errno 2] No such file or directory: '{secret}'")

    monkeypatch.setattr(core.jobs.run, "run_job", broken)
    op = _finish(api, api.submit(alice))
    assert op["metadata"]["state"] == "failed"
    message = op["error"]["message"]
    assert "checkpoint.pt" in message and str(api.settings.root) not in message, message

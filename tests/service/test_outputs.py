"""A finished job names its outputs with URLs, and a sample ensemble names its source
model only to callers who can see that model version, in process on SQLite
and PostgreSQL: the rows are made the way the worker makes them (claim, finish, register).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.registry import accounts, catalog
from core.registry import jobs as rows
from core.registry.db import session_scope, upgrade
from core.registry.keys import Caller
from core.registry.store import ArtifactStore, Blob
from core.settings import Settings

ADMIN = "srf_0a7b0750_outputs-test-admin-key"
THEORY = {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01}
MODEL = "lab-a.secret-flow"


@dataclass
class World:
    client: TestClient
    keys: dict[str, str]

    def get(self, who: str, path: str) -> Any:
        r = self.client.get(path, headers={"Authorization": f"Bearer {self.keys[who]}"})
        assert r.status_code == 200, r.text
        return r.json()


def _finish(s: Any, job_id: str, result: dict[str, Any]) -> None:
    assert rows.claim(s, job_id, "t", "w", 60)
    assert rows.finish(s, job_id, "t", "succeeded", result=result)


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> Any:
    settings = Settings(data_dir=tmp_path, admin_key=ADMIN, database_url=db_url)
    upgrade(settings.db_url)
    keys = {"admin": ADMIN}
    with session_scope(settings.db_url) as s:
        for group in ("lab-a", "lab-b"):
            accounts.create_group(s, group)
        for user, group in (("alice", "lab-a"), ("amy", "lab-a"), ("bob", "lab-b")):
            accounts.create_user(s, user, [group])
            keys[user] = accounts.issue_key(s, user).key
        alice = Caller("alice", ("lab-a",), False, "")
        # a group-visible model of lab-a, trained by alice's job
        train = rows.create_job(s, job_id="train-1", kind="train", spec={"method": "ir",
                                **THEORY}, queue="cpu", caller=alice)
        blob = Blob(sha256="a" * 64, size=10, relpath="blobs/a")
        mv = catalog.register_model_version(s, name=MODEL, job=train,
                                            files={"model.safetensors": blob},
                                            fields={**THEORY, "method": "ir"})
        _finish(s, "train-1", {"kind": "train", "model": {"name": MODEL, "version": 1}})
        # a public ensemble sampled from it
        rows.create_job(s, job_id="sample-1", kind="sample", spec={"model": f"{MODEL}/1"},
                        queue="cpu", caller=alice, visibility="public")
        _finish(s, "sample-1", {"kind": "sample",
                                "ensemble": {"id": "sample-1", "sha256": "b" * 64, "size": 5},
                                "model": {"name": MODEL, "version": 1}})
        job = rows.get_job(s, "sample-1")
        assert job is not None
        h5 = tmp_path / "sample-1.h5"  # a real file: readers without the model get a copy
        write_ensemble(h5, np.zeros((4, 8, 8)), EnsembleMeta(
            dim=2, L=8, kappa=0.2, lam=0.01, method="flow", model_id=f"{MODEL}/1"))
        catalog.register_ensemble(s, job=job, ensemble_id="sample-1",
                                  blob=ArtifactStore(settings.artifacts_dir).put_file(h5),
                                  fields={**THEORY, "n": 4, "summary": {},
                                          "model_version_id": mv.id})
        # a public scan whose one point registered that model and that ensemble
        rows.create_job(s, job_id="scan-1", kind="scan", spec={"L": 8, "kappa": [0.2]},
                        queue="cpu", caller=alice, visibility="public")
        point = {"kappa": 0.2, "lam": 0.01, "model": f"{MODEL}/1", "ensemble": "sample-1"}
        _finish(s, "scan-1", {"kind": "scan", "summary": {"points": [point], "n_points": 1}})
    with TestClient(create_app(settings)) as client:
        yield World(client, keys)


def test_finished_jobs_name_their_outputs_with_urls(world: World) -> None:
    train = world.get("alice", "/v1/jobs/train-1")["response"]
    assert train["model"] == {"name": MODEL, "version": 1, "ref": f"{MODEL}/1",
                              "url": f"/v1/models/{MODEL}/versions/1"}
    sample = world.get("alice", "/v1/jobs/sample-1")["response"]
    assert sample["ensemble"]["id"] == "sample-1"
    assert sample["ensemble"]["url"] == "/v1/ensembles/sample-1"
    assert sample["ensemble"]["download"] == "/v1/ensembles/sample-1/download"
    assert sample["model"]["url"] == f"/v1/models/{MODEL}/versions/1"
    for url in (train["model"]["url"], sample["ensemble"]["url"]):  # the links work
        world.get("alice", url)


def test_ensemble_names_its_model_only_to_who_can_see_it(world: World) -> None:
    for who in ("alice", "amy", "admin"):  # owner, same group, admin: named
        meta = world.get(who, "/v1/ensembles/sample-1")
        assert meta["model"]["ref"] == f"{MODEL}/1", who
    for path in ("/v1/ensembles/sample-1", "/v1/jobs/sample-1"):  # public, model is not
        r = world.client.get(path, headers={"Authorization": f"Bearer {world.keys['bob']}"})
        assert r.status_code == 200 and "secret-flow" not in r.text, (path, r.text)
    hidden = {"name": None, "version": None, "redacted": True}
    assert world.get("bob", "/v1/ensembles/sample-1")["model"] == hidden
    op = world.get("bob", "/v1/jobs/sample-1")
    assert op["response"]["model"] == hidden and op["metadata"]["spec"]["model"] == hidden
    listed = world.get("bob", "/v1/jobs")["operations"]
    assert sorted(o["name"] for o in listed) == ["jobs/sample-1", "jobs/scan-1"]
    assert "secret-flow" not in str(listed)


def test_scan_record_names_point_models_only_to_who_can_see_them(world: World) -> None:
    for who in ("alice", "amy", "admin"):
        for path in ("/v1/jobs/scan-1", "/v1/jobs/scan-1/scan"):
            doc = world.get(who, path)
            points = doc["response"]["summary"]["points"] if "response" in doc else doc["points"]
            assert points[0]["model"] == f"{MODEL}/1", (who, path)
    hidden = {"name": None, "version": None, "redacted": True}
    for path in ("/v1/jobs/scan-1", "/v1/jobs/scan-1/scan"):  # public scan, lab-a model
        r = world.client.get(path, headers={"Authorization": f"Bearer {world.keys['bob']}"})
        assert r.status_code == 200 and "secret-flow" not in r.text, (path, r.text)
        doc = r.json()
        points = doc["response"]["summary"]["points"] if "response" in doc else doc["points"]
        assert points[0]["model"] == hidden
        assert points[0]["ensemble"] == "sample-1"  # public: still named
    listed = world.get("bob", "/v1/jobs")["operations"]
    assert "secret-flow" not in str(listed)


class _FakeClient:
    """SrflowClient's surface used by ``srflow submit --wait``, answering from the app."""

    url = "http://srflow.example:8000"

    def __init__(self, world: World) -> None:
        self.world = world

    def __enter__(self) -> _FakeClient:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def submit(self, kind: str, spec: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"name": "jobs/sample-1"}

    def wait(self, job: str, progress: Any = None) -> dict[str, Any]:
        return dict(self.world.get("alice", f"/v1/{job}"))


def test_submit_wait_prints_where_the_outputs_are(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli import client_verbs
    from cli.main import main

    monkeypatch.setattr(client_verbs, "_client", lambda args: _FakeClient(world))
    assert main(["submit", "sample", "model=x", "--wait"]) == 0
    out = capsys.readouterr().out
    base = _FakeClient.url
    assert f"metadata {base}/v1/ensembles/sample-1\n" in out
    assert f"download {base}/v1/ensembles/sample-1/download\n" in out
    assert f"model {MODEL}/1\n    {base}/v1/models/{MODEL}/versions/1\n" in out

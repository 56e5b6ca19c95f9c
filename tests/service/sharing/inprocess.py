"""The API in process (TestClient) with members of several groups, uploads, submissions,
and the worker's own ``execute`` to finish a job whose computation a test replaces
(``core.jobs.run.run_job`` monkeypatched): the real submit → finish → register path in
about a second, without servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import core.jobs.run
from app.main import create_app
from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.settings import Settings
from tests.registry.flowfiles import write_flow
from tests.service.sharing.uploading import zip_dir
from worker.runner import execute

ADMIN = "srf_1dea5eed_in-process-sharing-admin-key"
TRAIN = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 1}
HMC = {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "n_samples": 16}
PROBLEM = "application/problem+json"


@dataclass
class Lab:
    client: TestClient
    settings: Settings

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def member(self, name: str, groups: str | list[str], **key_body: Any) -> str:
        """A user in ``groups`` (created if new; the first owns the user's objects) and a
        key issued by the admin."""
        groups = [groups] if isinstance(groups, str) else groups
        h = self.auth(ADMIN)
        for g in groups:
            r = self.client.post("/v1/groups", json={"name": g}, headers=h)
            assert r.status_code in (201, 409), r.text
        r = self.client.post("/v1/users", json={"name": name, "groups": groups}, headers=h)
        assert r.status_code == 201, r.text
        r = self.client.post(f"/v1/users/{name}/keys", json=key_body or None, headers=h)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def upload(self, key: str, name: str, vis: str, flow: Path | bytes) -> httpx.Response:
        body = flow if isinstance(flow, bytes) else zip_dir(flow)
        return self.client.post("/v1/models", params={"name": name, "visibility": vis},
                                content=body,
                                headers={**self.auth(key), "Content-Type": "application/zip"})

    def submit(self, key: str, kind: str = "train", spec: dict[str, Any] | None = None,
               **extra: Any) -> str:
        r = self.client.post("/v1/jobs", json={"kind": kind, "spec": spec or TRAIN, **extra},
                             headers=self.auth(key))
        assert r.status_code == 202, r.text
        return str(r.json()["name"]).removeprefix("jobs/")

    def finish(self, job_id: str, key: str = ADMIN) -> dict[str, Any]:
        """Run the job with the worker's own code; the operation as ``key`` sees it."""
        execute(job_id, self.settings, token=f"t-{job_id}", hostname="test")
        r = self.client.get(f"/v1/jobs/{job_id}", headers=self.auth(key))
        assert r.status_code == 200, r.text
        return dict(r.json())

    def get(self, key: str, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.auth(key))


@contextmanager
def running_lab(tmp_path: Path, **settings: Any) -> Iterator[Lab]:
    cfg = Settings(data_dir=tmp_path / "data", admin_key=ADMIN, **settings)
    with TestClient(create_app(cfg)) as c:
        yield Lab(c, cfg)


def ensemble_file(path: Path, model: str | None = None) -> Path:
    """An ensemble as the jobs write it; a sample's names its model in its attributes."""
    meta = EnsembleMeta(dim=2, L=8, kappa=0.25, lam=0.01, method="flow" if model else "hmc",
                        sampler={"model": model, "n_samples": 16} if model else {},
                        model_id=model)
    configs = np.random.default_rng(0).standard_normal((16, 8, 8))
    write_ensemble(path, configs, meta)
    return path


def fake_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """train hands back a flow, hmc and sample an ensemble; summaries name work paths as
    the real jobs' do (``model``, ``out``)."""
    flow = write_flow(tmp_path / "work-flow")

    def run_job(spec: Any, *, workdir: Path, model_resolver: Any, **_: Any) -> Any:
        if hasattr(spec, "steps"):  # train
            return SimpleNamespace(summary={"model": str(flow), "ess": 0.5},
                                   ensemble=None, model_dir=str(flow))
        ref = getattr(spec, "model", None)
        if ref is not None:
            model_resolver(ref)  # as the sampler does: records the version used
        out = ensemble_file(Path(workdir) / "ensemble.h5", ref)
        return SimpleNamespace(summary={"out": str(out), "theory": HMC}, ensemble=str(out),
                               model_dir=None)

    monkeypatch.setattr(core.jobs.run, "run_job", run_job)

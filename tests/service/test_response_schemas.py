"""Every response the API gives for real objects matches what /openapi.json documents for
its route and status: the content type is one the schema lists, and a JSON body validates
against the documented schema (JSON Schema 2020-12, as OpenAPI 3.1 states it). The fuzzer
(tests/service/test_fuzz.py) mostly meets empty registries and 404s; here every route
answers with a model, versions, jobs, ensembles, accounts and keys in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.registry.flowfiles import write_flow
from tests.service.sharing.inprocess import ADMIN, HMC, fake_jobs, running_lab


class Conformance:
    """Checks responses against the app's own OpenAPI document."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.checked: list[tuple[str, str, int]] = []

    def check(self, method: str, template: str, r: httpx.Response) -> httpx.Response:
        op = self.spec["paths"][template][method.lower()]
        doc = op["responses"].get(str(r.status_code))
        assert doc is not None, f"{method} {template}: {r.status_code} is not documented"
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        content = doc.get("content", {})
        if r.status_code in (204, 304):
            assert not r.content
        else:
            assert ctype in content, f"{method} {template} {r.status_code}: {ctype} not in " \
                                     f"{sorted(content)}"
            schema = content[ctype].get("schema") or {}
            if ctype.endswith("json"):
                validator = Draft202012Validator({**schema,
                                                  "components": self.spec["components"]})
                errors = sorted(validator.iter_errors(r.json()), key=str)
                assert not errors, f"{method} {template} {r.status_code}: {errors[0]}"
        self.checked.append((method, template, r.status_code))
        return r


def test_real_responses_match_the_openapi_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the upload's 201 and the model download were documented as JSON of any
    shape, the HDF5 and PNG downloads with no content type at all."""
    fake_jobs(monkeypatch, tmp_path)
    with running_lab(tmp_path) as lab:
        c, ok = lab.client, Conformance(lab.client.get("/openapi.json").json())
        alice, bob = lab.member("alice", "lab-a"), lab.member("bob", "lab-b")
        a, b, admin = lab.auth(alice), lab.auth(bob), lab.auth(ADMIN)

        ok.check("GET", "/v1/health", c.get("/v1/health"))
        ok.check("GET", "/v1/health", c.get("/v1/health", headers=admin))
        ok.check("GET", "/v1/groups", c.get("/v1/groups", headers=a))
        ok.check("POST", "/v1/groups", c.post("/v1/groups", json={"name": "lab-c"},
                                              headers=admin))
        ok.check("POST", "/v1/users", c.post("/v1/users", json={"name": "cy",
                                                                "groups": ["lab-c"]},
                                             headers=admin))
        ok.check("GET", "/v1/users/{name}", c.get("/v1/users/alice", headers=a))
        key = ok.check("POST", "/v1/users/{name}/keys",
                       c.post("/v1/users/alice/keys", json={"expires_in_days": 1}, headers=a))
        ok.check("DELETE", "/v1/keys/{prefix}",
                 c.delete(f"/v1/keys/{key.json()['prefix']}", headers=a))

        up = ok.check("POST", "/v1/models", lab.upload(alice, "m", "group",
                                                       write_flow(tmp_path / "f")))
        assert up.status_code == 201
        ok.check("GET", "/v1/models", c.get("/v1/models", headers=a))
        ok.check("GET", "/v1/models/{name}", c.get("/v1/models/m", headers=a))
        ok.check("GET", "/v1/models/{name}/versions/{version}",
                 c.get("/v1/models/m/versions/1", headers=a))
        ok.check("PUT", "/v1/models/{name}/aliases/{alias}",
                 c.put("/v1/models/m/aliases/best", json={"version": 1}, headers=a))
        ok.check("GET", "/v1/models/{name}/versions/{version}/download",
                 c.get("/v1/models/m/versions/1/download", headers=a))
        ok.check("PATCH", "/v1/models/{name}", c.patch("/v1/models/m", json={
            "visibility": "public"}, headers=a))

        train = lab.submit(alice, model_name="m")
        ok.check("GET", "/v1/jobs/{job_id}", c.get(f"/v1/jobs/{train}", headers=a))
        lab.finish(train)
        sample = lab.submit(alice, "sample", {"model": "m/1", "n_samples": 16},
                            visibility="public")
        lab.finish(sample)
        hmc = lab.submit(alice, "hmc", HMC)
        ok.check("POST", "/v1/jobs/{job_id}:cancel", c.post(f"/v1/jobs/{hmc}:cancel",
                                                            headers=a))
        ok.check("POST", "/v1/jobs", c.post("/v1/jobs", json={"kind": "hmc", "spec": HMC},
                                            headers=a))
        ok.check("GET", "/v1/jobs", c.get("/v1/jobs", headers=a))
        for job in (train, sample):
            ok.check("GET", "/v1/jobs/{job_id}", c.get(f"/v1/jobs/{job}", headers=a))
        ok.check("PATCH", "/v1/models/{name}/versions/{version}",
                 c.patch("/v1/models/m/versions/1", json={"visibility": "private"},
                         headers=a))
        for h in (a, b):  # bob sees the ensemble, not the model: the redacted copy
            ok.check("GET", "/v1/ensembles/{ensemble_id}",
                     c.get(f"/v1/ensembles/{sample}", headers=h))
            url = f"/v1/ensembles/{sample}/download"
            ok.check("GET", "/v1/ensembles/{ensemble_id}/download", c.get(url, headers=h))
            ok.check("GET", "/v1/ensembles/{ensemble_id}/download",
                     c.get(url, headers={**h, "Range": "bytes=0-99"}))
        ok.check("PATCH", "/v1/ensembles/{ensemble_id}",
                 c.patch(f"/v1/ensembles/{sample}", json={"visibility": "group"}, headers=a))
        for status_route in (("GET", "/v1/models/{name}", c.get("/v1/models/no", headers=b)),
                             ("POST", "/v1/jobs", c.post("/v1/jobs", json={}, headers=a)),
                             ("GET", "/v1/jobs", c.get("/v1/jobs", headers={
                                 "Authorization": "Bearer wrong"}))):
            assert status_route[2].status_code >= 400
            ok.check(*status_route)
        ok.check("DELETE", "/v1/ensembles/{ensemble_id}",
                 c.delete(f"/v1/ensembles/{sample}", headers=a))
    assert len(ok.checked) >= 30

"""Isolation over HTTP: two users in different groups (and one in the same group)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.registry.flowfiles import write_flow
from tests.service.helpers import SMALL_HMC
from tests.service.processes import Service
from tests.service.sharing.members import make_member
from tests.service.sharing.uploading import upload_zip, zip_dir

pytestmark = [pytest.mark.service, pytest.mark.slow]
VIS = ("private", "group", "public")
TINY = {**SMALL_HMC, "n_samples": 16, "n_therm": 10, "chains": 2}


def test_groups_see_only_what_they_may(redis_service: Service, tmp_path: Path) -> None:
    svc, tag = redis_service, uuid.uuid4().hex[:6]
    alice, carol = make_member(svc, f"ga-{tag}"), make_member(svc, f"ga-{tag}")
    bob = make_member(svc, f"gb-{tag}")
    body = zip_dir(write_flow(tmp_path / "flow"))
    jobs, models = {}, {}
    with alice.client(svc) as c:
        for vis in VIS:
            r = c.post("/v1/jobs", json={"kind": "hmc", "spec": TINY, "visibility": vis})
            assert r.status_code == 202, r.text
            jobs[vis] = r.json()["name"].removeprefix("jobs/")
            models[vis] = f"m-{vis}-{tag}"
            r = upload_zip(c, body, models[vis], vis)
            assert r.status_code == 201, r.text
        deadline = time.monotonic() + 120
        while not all(c.get(f"/v1/jobs/{j}").json()["done"] for j in jobs.values()):
            assert time.monotonic() < deadline, svc.dump_logs()
            time.sleep(0.3)
        for j in jobs.values():
            assert c.get(f"/v1/jobs/{j}").json()["metadata"]["state"] == "succeeded"

    with bob.client(svc) as b:
        for vis in ("private", "group"):
            j, m = jobs[vis], models[vis]
            for method, path in (("GET", f"/v1/jobs/{j}"), ("GET", f"/v1/jobs/{j}/events"),
                                 ("POST", f"/v1/jobs/{j}:cancel"),
                                 ("GET", f"/v1/ensembles/{j}"),
                                 ("GET", f"/v1/ensembles/{j}/download"),
                                 ("DELETE", f"/v1/ensembles/{j}"),
                                 ("GET", f"/v1/models/{m}"), ("GET", f"/v1/models/{m}/versions/1"),
                                 ("GET", f"/v1/models/{m}/versions/1/download"),
                                 ("DELETE", f"/v1/models/{m}")):
                r = b.request(method, path)
                assert r.status_code == 404, (vis, method, path, r.text)
                assert r.headers["content-type"] == "application/problem+json"
                assert alice.name not in r.text  # nothing about the object leaks
            r = b.put(f"/v1/models/{m}/aliases/best", json={"version": 1})
            assert r.status_code == 404
            r = b.post("/v1/jobs", json={"kind": "sample", "spec": {"model": m,
                                                                    "n_samples": 8}})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "spec.model"
        listed = {o["name"] for o in b.get("/v1/jobs").json()["operations"]}
        assert f"jobs/{jobs['public']}" in listed
        assert not listed & {f"jobs/{jobs['private']}", f"jobs/{jobs['group']}"}
        refs = {v["ref"] for v in b.get("/v1/models").json()["model_versions"]}
        assert f"{models['public']}/1" in refs
        assert not refs & {f"{models['private']}/1", f"{models['group']}/1"}
        # public: readable, not modifiable
        j, m = jobs["public"], models["public"]
        assert b.get(f"/v1/jobs/{j}").status_code == 200
        assert b.get(f"/v1/ensembles/{j}/download").status_code == 200
        assert b.get(f"/v1/models/{m}/versions/1/download").status_code == 200
        for r in (b.put(f"/v1/models/{m}/aliases/best", json={"version": 1}),
                  b.delete(f"/v1/models/{m}"), b.delete(f"/v1/models/{m}/versions/1"),
                  b.patch(f"/v1/models/{m}", json={"visibility": "private"}),
                  b.delete(f"/v1/ensembles/{j}"),
                  b.patch(f"/v1/ensembles/{j}", json={"visibility": "private"}),
                  b.post(f"/v1/jobs/{j}:cancel")):
            assert r.status_code == 403, r.text
            assert r.headers["content-type"] == "application/problem+json"
        # a train job cannot add versions to a model it may not curate (as an upload cannot)
        for vis, status in (("private", 404), ("public", 403)):  # 404: not confirmed
            r = b.post("/v1/jobs", json={"kind": "train", "model_name": models[vis],
                                         "spec": {"method": "ir", "dim": 2, "L": 8,
                                                  "kappa": 0.25, "lam": 0.01, "steps": 1}})
            assert r.status_code == status and r.json()["errors"][0]["field"] == "model_name"
        assert b.post("/v1/groups", json={"name": f"x-{tag}"}).status_code == 403

    with carol.client(svc) as c:  # same group: sees group objects, moves their aliases
        assert c.get(f"/v1/jobs/{jobs['group']}").status_code == 200
        assert c.get(f"/v1/ensembles/{jobs['group']}").status_code == 200
        assert c.get(f"/v1/jobs/{jobs['private']}").status_code == 404
        assert c.get(f"/v1/models/{models['private']}").status_code == 404
        r = c.put(f"/v1/models/{models['group']}/aliases/best", json={"version": 1})
        assert r.status_code == 200, r.text
        assert c.delete(f"/v1/models/{models['group']}").status_code == 403

    with alice.client(svc) as c:
        assert c.delete(f"/v1/models/{models['private']}").status_code == 204
        assert c.get(f"/v1/models/{models['private']}").status_code == 404


def test_revoked_and_expired_keys_are_401(redis_service: Service) -> None:
    svc = redis_service
    dora = make_member(svc, f"gd-{uuid.uuid4().hex[:6]}")
    with dora.client(svc) as c:
        assert c.get("/v1/jobs").status_code == 200
        short = c.post(f"/v1/users/{dora.name}/keys", json={"expires_in_days": 1.5 / 86400})
        assert short.status_code == 201 and short.json()["key"].startswith("srf_")
        other = c.post("/v1/users/somebody-else/keys")
        assert other.status_code == 404
        me = c.get(f"/v1/users/{dora.name}").json()
        assert {k["prefix"] for k in me["keys"]} == {dora.prefix, short.json()["prefix"]}
        assert all("key" not in k for k in me["keys"])  # never shown again
        assert c.delete(f"/v1/keys/{dora.prefix}").status_code == 204
        r = c.get("/v1/jobs")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    time.sleep(1.6)
    with svc.client(short.json()["key"]) as c:
        assert c.get("/v1/jobs").status_code == 401

"""Problem details: 401 without or with a wrong key, 404 for unknown ids, 422 naming the
field for bad specs, limits and unknown models."""

from __future__ import annotations

import httpx
import pytest

from tests.service.processes import Service

pytestmark = [pytest.mark.service]
PROBLEM = "application/problem+json"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer srf_00000000_wrong"},
                                     {"Authorization": "Basic abc"}])
def test_missing_or_wrong_key_is_401(redis_service: Service, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/models"),
                         ("GET", "/v1/ensembles/x/download")):
        r = httpx.request(method, redis_service.url + path, headers=headers, json={})
        assert r.status_code == 401, (path, r.text)
        assert r.headers["content-type"] == PROBLEM
        body = r.json()
        assert body["status"] == 401 and body["instance"] == path and "key" in body["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(redis_service.url + "/v1/health").status_code == 200  # no key needed


@pytest.mark.parametrize("path", ["/v1/jobs/no-such-job", "/v1/jobs/no-such-job/events",
                                  "/v1/ensembles/no-such", "/v1/ensembles/no-such/download",
                                  "/v1/models/no-such", "/v1/models/no-such/versions/1",
                                  "/v1/models/no-such/versions/1/download"])
def test_unknown_ids_are_404(redis_service: Service, path: str) -> None:
    with redis_service.client() as c:
        r = c.get(path)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["instance"] == path and "no-such" in r.json()["detail"]


BAD = [
    ({"kind": "train", "spec": {"L": 24, "kappa": 0.2, "lam": 0.01}}, "spec.L",
     "L=24 is not 8·2^n"),
    ({"kind": "hmc", "spec": {"L": 8, "kappa": 0.2, "lam": -0.5, "n_samples": 10}}, "spec.lam",
     "lam=-0.5"),
    ({"kind": "hmc", "spec": {"L": 8, "kappa": 0.2, "lam": 0.1, "n_samples": 10**9}},
     "spec.n_samples", "max_n_samples=1000000"),
    ({"kind": "train", "spec": {"L": 8, "kappa": 0.2, "lam": 0.1, "method": "xy"}},
     "spec.method", "method='xy'"),
    ({"kind": "sample", "spec": {"model": "nobody@best", "n_samples": 10}}, "spec.model",
     "not a registered model"),
    ({"kind": "sample", "spec": {"model": "nobody@best", "n_samples": 10,
                                 "coarse_sampler": "wolff"}}, "spec.coarse_sampler",
     "coarse_sampler='wolff'"),
    ({"kind": "hmc", "spec": {"L": 8, "kappa": 0.2, "lam": 0.1, "n_samples": 10, "colour": 1}},
     "spec.colour", "unknown field"),
    ({"kind": "ising", "spec": {}}, "kind", "hmc, train or sample"),
    ({"kind": "hmc", "spec": {"kappa": 0.2, "lam": 0.1, "n_samples": 10}}, "spec.L",
     "L is required"),
]


@pytest.mark.parametrize(("body", "field", "needle"), BAD)
def test_bad_specs_are_422_naming_the_field(
    redis_service: Service, body: dict, field: str, needle: str
) -> None:
    with redis_service.client() as c:
        before = c.get("/v1/jobs", params={"page_size": 1000}).json()["operations"]
        r = c.post("/v1/jobs", json=body)
        after = c.get("/v1/jobs", params={"page_size": 1000}).json()["operations"]
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    p = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(p)
    assert [e["field"] for e in p["errors"]] == [field]
    assert needle in p["errors"][0]["message"] and needle in p["detail"]
    assert len(after) == len(before)  # nothing was queued


def test_bad_page_token_and_state_are_422(redis_service: Service) -> None:
    with redis_service.client() as c:
        r1 = c.get("/v1/jobs", params={"page_token": "garbage!"})
        r2 = c.get("/v1/jobs", params={"state": "sleeping"})
    assert r1.status_code == 422 and r1.json()["errors"][0]["field"] == "page_token"
    assert r2.status_code == 422 and r2.json()["errors"][0]["field"] == "state"

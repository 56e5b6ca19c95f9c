"""API keys over HTTP, in process: limits belong to the user, not the key (a fresh key
resets nothing), a user holds at most max_keys_per_user active keys, revoking a key
revokes every key issued with it, and an expiry without a time zone is a 422."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.registry import jobs as rows
from core.registry.db import session_scope
from core.registry.keys import Caller
from tests.service.sharing.inprocess import ADMIN, PROBLEM, Lab, running_lab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as lab:
        yield lab


def mint(lab: Lab, key: str, user: str, body: dict[str, Any] | None = None) -> Any:
    return lab.client.post(f"/v1/users/{user}/keys", json=body, headers=lab.auth(key))


def test_a_naive_expires_at_is_refused_with_422_naming_the_field(lab: Lab) -> None:
    """Before: 500 (TypeError comparing a naive with an aware datetime)."""
    alice = lab.member("alice", "lab-a")
    r = mint(lab, alice, "alice", {"expires_at": "2030-01-01T00:00:00"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    err = r.json()["errors"][0]
    assert err["field"] == "expires_at" and "time zone" in err["message"]
    assert "2030-01-01T00:00:00Z" in err["message"]  # the fix
    r = mint(lab, alice, "alice", {"expires_at": "2030-01-01T00:00:00+01:00"})
    assert r.status_code == 201 and r.json()["expires_at"] == "2029-12-31T23:00:00Z"


def test_a_user_holds_at_most_max_keys_per_user_active_keys(tmp_path: Path) -> None:
    """Before: a user could mint keys for themself without limit."""
    with running_lab(tmp_path, max_keys_per_user=3) as lab:
        alice = lab.member("alice", "lab-a")  # key 1, from the admin
        prefixes = [mint(lab, alice, "alice").json()["prefix"] for _ in range(2)]
        r = mint(lab, alice, "alice")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == PROBLEM
        assert "max_keys_per_user=3" in r.json()["detail"]
        assert "DELETE /v1/keys/" in r.json()["detail"]  # the fix
        assert lab.client.delete(f"/v1/keys/{prefixes[0]}", headers=lab.auth(alice)).status_code \
            == 204
        assert mint(lab, alice, "alice").status_code == 201  # a revoked key frees its place


def test_a_fresh_key_does_not_reset_the_job_rate_limit(tmp_path: Path) -> None:
    """Before: each key had its own bucket, so minting a key gave a full burst again."""
    with running_lab(tmp_path, rate_jobs_per_minute=1.0, rate_jobs_burst=2) as lab:
        alice = lab.member("alice", "lab-a")
        for _ in range(2):
            assert lab.client.post("/v1/jobs", json={}, headers=lab.auth(alice)).status_code == 422
        fresh = mint(lab, alice, "alice").json()["key"]
        r = lab.client.post("/v1/jobs", json={}, headers=lab.auth(fresh))
        assert r.status_code == 429, r.text
        assert "this user" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
        bob = lab.member("bob", "lab-a")
        assert lab.client.post("/v1/jobs", json={}, headers=lab.auth(bob)).status_code == 422


def test_a_fresh_key_does_not_reset_the_event_stream_cap(tmp_path: Path) -> None:
    """Before: the cap counted streams per key; a second key opened a second stream."""
    with running_lab(tmp_path, max_streams_per_user=1, sse_poll_s=0.05) as lab:
        alice = lab.member("alice", "lab-a")
        with session_scope(lab.settings.db_url) as s:
            rows.create_job(s, job_id="j1", kind="hmc", spec={}, queue="cpu",
                            caller=Caller("alice", ("lab-a",), False, ""))
        fresh = mint(lab, alice, "alice").json()["key"]
        with lab.client.stream("GET", "/v1/jobs/j1/events", headers=lab.auth(alice)) as first:
            assert first.status_code == 200
            next(first.iter_lines())
            with lab.client.stream("GET", "/v1/jobs/j1/events", headers=lab.auth(fresh)) as second:
                assert second.status_code == 429
                assert "max_streams_per_user=1" in second.read().decode()


def test_revoking_a_key_revokes_the_keys_it_issued(lab: Lab) -> None:
    """Before: a key minted with a stolen key survived the stolen key's revocation."""
    alice = lab.member("alice", "lab-a")
    bob = lab.member("bob", "lab-a")
    child = mint(lab, alice, "alice").json()
    grandchild = mint(lab, child["key"], "alice").json()
    other = mint(lab, ADMIN, "alice").json()  # issued by the admin's key: unrelated
    keys = lab.get(alice, "/v1/users/alice").json()["keys"]
    first = keys[0]["prefix"]
    assert lab.client.delete(f"/v1/keys/{first}", headers=lab.auth(bob)).status_code == 404
    assert lab.client.delete(f"/v1/keys/{first}", headers=lab.auth(other["key"])
                             ).status_code == 204
    for key in (alice, child["key"], grandchild["key"]):
        assert lab.get(key, "/v1/jobs").status_code == 401
    assert lab.get(other["key"], "/v1/jobs").status_code == 200
    states = {k["prefix"]: k["state"] for k in
              lab.get(other["key"], "/v1/users/alice").json()["keys"]}
    assert states == {first: "revoked", child["prefix"]: "revoked",
                      grandchild["prefix"]: "revoked", other["prefix"]: "active"}

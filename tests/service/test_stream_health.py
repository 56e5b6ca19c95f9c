"""What /v1/health tells whom, and the limits of /v1/jobs/{id}/events: a user
follows at most max_streams_per_user streams at once, and a stream whose key is revoked
ends at the next re-check."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.registry import jobs as rows
from core.registry.accounts import create_group, create_user, issue_key, revoke_key
from core.registry.db import session_scope
from core.registry.keys import Caller
from core.settings import Settings

KEY = "srf_57e0a4e1_stream-health-admin-key"
UNREACHABLE = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


def _alice(settings: Settings) -> tuple[str, str]:
    with session_scope(settings.db_url) as s:
        create_group(s, "lab-a")
        create_user(s, "alice", ["lab-a"])
        new = issue_key(s, "alice")
        rows.create_job(s, job_id="j1", kind="hmc", spec={}, queue="cpu",
                        caller=Caller("alice", ("lab-a",), False, new.prefix))
        return new.key, new.prefix


@pytest.mark.slow
def test_health_tells_outsiders_only_the_status(tmp_path: Path) -> None:
    """Before: without a key the broker's raw exception text (host, port, errno) and the
    workers' host names were returned."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, broker_url=UNREACHABLE)
    with TestClient(create_app(settings)) as c:
        alice, _ = _alice(settings)
        anon = c.get("/v1/health")
        assert anon.status_code == 200 and anon.json() == {"status": "degraded"}
        assert c.get("/v1/health", headers={"Authorization": "Bearer wrong"}).json() == {
            "status": "degraded"}
        member = c.get("/v1/health", headers={"Authorization": f"Bearer {alice}"}).json()
        assert member["broker"] == {"ok": False} and "error" not in member["database"]
        assert "names" not in member["workers"]
        admin = c.get("/v1/health", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert "9" in admin["broker"]["error"]  # the admin sees the real cause


def test_streams_per_user_are_capped(tmp_path: Path) -> None:
    """Before: a key could hold any number of event streams open."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, max_streams_per_user=1,
                        sse_poll_s=0.05)
    with TestClient(create_app(settings)) as c:
        alice, _ = _alice(settings)
        auth = {"Authorization": f"Bearer {alice}"}
        with c.stream("GET", "/v1/jobs/j1/events", headers=auth) as first:
            assert first.status_code == 200
            next(first.iter_lines())
            with c.stream("GET", "/v1/jobs/j1/events", headers=auth) as second:
                assert second.status_code == 429  # before: 200, a second endless stream
                assert second.headers["content-type"] == "application/problem+json"
                assert "max_streams_per_user=1" in second.read().decode()
                assert "retry-after" in second.headers
            with c.stream("GET", "/v1/jobs/j1/events",
                          headers={"Authorization": f"Bearer {KEY}"}) as admin:
                assert admin.status_code == 200  # another user has their own allowance
        with c.stream("GET", "/v1/jobs/j1/events", headers=auth) as again:
            assert again.status_code == 200  # the closed stream gave its slot back


def test_a_revoked_key_ends_its_stream(tmp_path: Path) -> None:
    """Before: a stream opened with a key that was then revoked ran until the job ended
    (forever for a queued job no worker takes)."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, sse_poll_s=0.05,
                        sse_key_recheck_s=0.2)
    with TestClient(create_app(settings)) as c:
        alice, prefix = _alice(settings)
        events: list[str] = []

        def revoke() -> None:
            with session_scope(settings.db_url) as s:
                revoke_key(s, prefix, None)

        with c.stream("GET", "/v1/jobs/j1/events",
                      headers={"Authorization": f"Bearer {alice}"}) as r:
            assert r.status_code == 200
            timer = threading.Timer(0.3, revoke)
            timer.start()
            done = threading.Event()
            guard = threading.Timer(20.0, done.set)  # the old code never ends the stream
            guard.start()
            for line in r.iter_lines():
                if line.startswith("event:"):
                    events.append(line[6:].strip())
                if done.is_set():
                    break
            guard.cancel()
        assert events[0] == "progress" and events[-1] == "error", events

"""Guessing keys is slowed down and weak admin keys are refused: after
auth_failures_burst wrong API keys or failed dashboard sign-ins, a client address gets 429
problem+json with Retry-After (also for a right key, until a failure is forgiven); a
SRFLOW_ADMIN_KEY that is short or predictable stops the server from starting."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from core.registry.db import session_scope
from core.registry.keys import WeakAdminKey, any_key, ensure_key
from core.settings import Settings
from tests.cli.helpers import SRFLOW

KEY = "srf_7a11ed00_sign-in-throttle-admin-key"
PROBLEM = "application/problem+json"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path, admin_key=KEY, auth_failures_burst=5,
                    auth_failures_per_minute=1.0, **extra)  # type: ignore[arg-type]


def test_wrong_api_keys_are_throttled_per_client_address(tmp_path: Path) -> None:
    """Before: 100 wrong keys in a row all got 401."""
    app = create_app(_settings(tmp_path))
    with TestClient(app, client=("10.0.0.1", 1000)) as c:
        wrong = {"Authorization": "Bearer srf_00000000_guess"}
        assert [c.get("/v1/jobs", headers=wrong).status_code for _ in range(5)] == [401] * 5
        r = c.get("/v1/jobs", headers=wrong)
        assert r.status_code == 429, r.text
        assert r.headers["content-type"] == PROBLEM
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["status"] == 429 and "auth_failures_burst=5" in r.json()["detail"]
        right = {"Authorization": f"Bearer {KEY}"}
        assert c.get("/v1/jobs", headers=right).status_code == 429  # no oracle meanwhile
        assert c.get("/v1/health", headers=wrong).status_code == 429
        assert c.get("/v1/health").status_code == 200  # nothing guessed: not throttled
    with TestClient(app, client=("10.0.0.2", 1000)) as other:
        assert other.get("/v1/jobs", headers=right).status_code == 200  # another address


def test_wrong_keys_to_routes_that_answer_anyone_count_too(tmp_path: Path) -> None:
    """/v1/health answers a wrong key as an anonymous caller, so it is no free oracle."""
    with TestClient(create_app(_settings(tmp_path)), client=("10.0.0.3", 1)) as c:
        wrong = {"Authorization": "Bearer srf_00000000_guess"}
        assert {c.get("/v1/health", headers=wrong).status_code for _ in range(5)} == {200}
        assert c.get("/v1/health", headers=wrong).status_code == 429


def test_failed_dashboard_sign_ins_are_throttled(tmp_path: Path) -> None:
    """Before: 40 wrong sign-ins in a row all got 401."""
    app = create_app(_settings(tmp_path))
    with TestClient(app, client=("10.0.0.4", 1), follow_redirects=False) as c:
        def sign_in(key: str) -> int:
            page = c.get("/ui/signin")
            m = _TOKEN.search(page.text)
            assert m, page.text[:500]
            return c.post("/ui/signin", data={"csrf_token": m.group(1), "api_key": key,
                                              "next": "/ui/jobs"}).status_code

        assert [sign_in("srf_00000000_guess") for _ in range(5)] == [401] * 5
        page = c.get("/ui/signin")
        m = _TOKEN.search(page.text)
        assert m
        r = c.post("/ui/signin", data={"csrf_token": m.group(1), "api_key": KEY,
                                       "next": "/ui/jobs"})
        assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
        assert int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize("weak", ["hunter2", "a" * 40, "password1234password1234"])
def test_a_weak_admin_key_stops_the_server_with_one_line(tmp_path: Path, weak: str) -> None:
    """Before: SRFLOW_ADMIN_KEY=hunter2 was accepted as an admin key."""
    with pytest.raises(SystemExit) as exc:
        create_app(Settings(data_dir=tmp_path, admin_key=weak))
    message = str(exc.value)
    assert "\n" not in message and weak not in message
    assert "SRFLOW_ADMIN_KEY" in message and "secrets.token_urlsafe" in message
    settings = Settings(data_dir=tmp_path, admin_key=weak)
    # `srflow serve` says it in one line, exits 2 and stores nothing either
    serve = subprocess.run([*SRFLOW, "serve", "--port", "1"], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL,
                           env={**os.environ, "SRFLOW_ADMIN_KEY": weak,
                                "SRFLOW_DATA_DIR": str(tmp_path)})
    lines = serve.stderr.strip().splitlines()
    assert serve.returncode == 2 and len(lines) == 1, serve.stderr
    assert "SRFLOW_ADMIN_KEY" in lines[0] and weak not in lines[0]
    with session_scope(settings.db_url) as s:
        with pytest.raises(WeakAdminKey):
            ensure_key(s, weak)
        assert not any_key(s)

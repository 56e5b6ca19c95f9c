"""Per-key rate limits: POST /v1/jobs and uploads answer 429 problem+json with
Retry-After once a key's token bucket is empty; other keys are unaffected."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app import problems
from app.main import create_app
from app.ratelimit import Limiter, UploadRateLimit
from core.registry.accounts import create_group, create_user, issue_key
from core.registry.db import session_scope, upgrade
from core.settings import Settings

KEY = "srf_2a7e1150_ratelimit-admin-key"


def _user_key(settings: Settings, user: str) -> str:
    with session_scope(settings.db_url) as s:
        create_group(s, f"lab-{user}")
        create_user(s, user, [f"lab-{user}"])
        return issue_key(s, user).key


def test_job_submissions_are_rate_limited_per_key(tmp_path: Path) -> None:
    """Before: any number of submissions per second were handled."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, rate_jobs_per_minute=1.0,
                        rate_jobs_burst=2)
    with TestClient(create_app(settings)) as c:
        other = _user_key(settings, "bob")
        admin = {"Authorization": f"Bearer {KEY}"}
        codes = [c.post("/v1/jobs", json={}, headers=admin).status_code for _ in range(2)]
        assert codes == [422, 422]  # within the burst: the body is judged
        r = c.post("/v1/jobs", json={}, headers=admin)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["status"] == 429 and "1 a minute" in r.json()["detail"]
        r = c.post("/v1/jobs", json={}, headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 422  # another key has its own bucket
        assert c.get("/v1/jobs", headers=admin).status_code == 200  # reads are not limited


def test_the_upload_dependency_limits_per_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, rate_uploads_per_minute=60.0, rate_uploads_burst=1)
    upgrade(settings.db_url)
    key = _user_key(settings, "carol")
    app = FastAPI()
    app.state.settings = settings
    problems.install(app)

    @app.post("/up")
    def up(_limit: UploadRateLimit) -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as c:
        auth = {"Authorization": f"Bearer {key}"}
        assert c.post("/up", headers=auth).status_code == 200
        r = c.post("/up", headers=auth)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert c.post("/up").status_code == 401  # no key: no bucket, just 401


def test_token_bucket_refills_at_the_rate() -> None:
    lim = Limiter()
    assert [lim.take("s", "k", 60.0, 2, now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert lim.take("s", "k", 60.0, 2, now=0.0) == 1.0  # one token a second
    assert lim.take("s", "k", 60.0, 2, now=0.5) == 0.5
    assert lim.take("s", "k", 60.0, 2, now=1.5) == 0.0
    assert lim.take("s", "k", 60.0, 2, now=100.0) == 0.0  # refilled to the burst only
    assert lim.take("s", "k", 60.0, 2, now=100.0) == 0.0
    assert lim.take("s", "k", 60.0, 2, now=100.0) > 0.0


def test_model_uploads_are_rate_limited_per_key(tmp_path: Path) -> None:
    """Before: POST /v1/models took any number of uploads (the limiter was not attached)."""
    settings = Settings(data_dir=tmp_path, admin_key=KEY, rate_uploads_per_minute=1.0,
                        rate_uploads_burst=1)
    with TestClient(create_app(settings)) as c:
        admin = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/zip"}
        first = c.post("/v1/models?name=m", content=b"not a zip", headers=admin)
        assert first.status_code == 422  # within the burst: the body is judged
        r = c.post("/v1/models?name=m", content=b"not a zip", headers=admin)
        assert r.status_code == 429 and r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["retry-after"]) >= 1

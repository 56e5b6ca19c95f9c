"""Dashboard sessions in the registry database (migration 0005), on SQLite and PostgreSQL:
a session made by one app instance serves another on the same database (another API
process) and a fresh one (a restart); the database holds neither the session id nor the
API key; idle, expired, signed-out and revoked-key sessions end everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

from app.main import create_app
from app.ui.session import SessionStore, UISettings, digest, seal, unseal
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.registry.models import DashboardSession, utcnow
from core.settings import Settings
from tests.databases import db_url, postgres_server
from tests.ui.lab import ADMIN, sign_in

__all__ = ["db_url", "postgres_server"]


def _app(data: Path, url: str) -> TestClient:
    """One API process: its own app, session store and connection pool."""
    app = create_app(Settings(data_dir=data, database_url=url, admin_key=ADMIN))
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def two(tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, TestClient, str]]:
    with _app(tmp_path / "a", db_url) as a, _app(tmp_path / "b", db_url) as b:
        yield a, b, db_url


def _make_key(c: TestClient, user: str) -> tuple[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    if c.get(f"/v1/users/{user}", headers=admin).status_code == 404:
        assert c.post("/v1/groups", json={"name": "lab-s"}, headers=admin).status_code in (
            201, 409)
        assert c.post("/v1/users", json={"name": user, "groups": ["lab-s"]},
                      headers=admin).status_code == 201
    r = c.post(f"/v1/users/{user}/keys", json={}, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["key"], r.json()["prefix"]


def _rows(url: str) -> list[DashboardSession]:
    with session_factory(url)() as s:
        return list(s.scalars(select(DashboardSession)))


def test_a_session_serves_every_process_and_survives_a_restart(
        two: tuple[TestClient, TestClient, str], tmp_path: Path) -> None:
    a, b, url = two
    key, _ = _make_key(a, "sam")
    token = sign_in(a, key)
    cookie = a.cookies.get("srflow_session")
    assert cookie
    b.cookies.set("srflow_session", cookie, path="/ui")
    page = b.get("/ui/jobs")  # another process: its own store, the same database
    assert page.status_code == 200 and "sam" in page.text
    assert f'value="{token}"' in page.text  # the same CSRF token everywhere
    with _app(tmp_path / "c", url) as restarted:  # a fresh process: nothing in memory
        restarted.cookies.set("srflow_session", cookie, path="/ui")
        assert restarted.get("/ui/jobs").status_code == 200
        # signing out in one process ends the session in all of them
        assert b.post("/ui/signout", data={"csrf_token": token}).status_code == 303
        assert restarted.get("/ui/jobs").status_code == 303
        assert a.get("/ui/jobs").status_code == 303
    assert _rows(url) == []


def test_the_database_holds_neither_the_session_id_nor_the_key(
        two: tuple[TestClient, TestClient, str]) -> None:
    a, _, url = two
    key, _ = _make_key(a, "sam")
    sign_in(a, key)
    sid = a.cookies.get("srflow_session") or ""
    (row,) = _rows(url)
    values = [str(v) for v in (row.id_hash, row.sealed_key, row.user, row.groups)]
    assert not any(key in v or sid in v for v in values)
    assert row.id_hash == digest(sid) and unseal(sid, row.sealed_key) == key
    assert unseal("another-session-id" + sid[:8], row.sealed_key) != key
    assert row.expires_at - row.create_time == timedelta(seconds=UISettings().session_max_s)


def test_a_revoked_key_ends_its_sessions_in_every_process(
        two: tuple[TestClient, TestClient, str]) -> None:
    a, b, url = two
    key, prefix = _make_key(a, "sam")
    sign_in(a, key)
    b.cookies.set("srflow_session", a.cookies.get("srflow_session") or "", path="/ui")
    assert b.get("/ui/jobs").status_code == 200
    r = a.delete(f"/v1/keys/{prefix}", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 204
    assert b.get("/ui/jobs").status_code == 303
    assert a.get("/ui/jobs").status_code == 303
    assert _rows(url) == []  # removed at the first look after the revocation


def test_idle_and_expired_sessions_end(two: tuple[TestClient, TestClient, str]) -> None:
    a, b, url = two
    key, _ = _make_key(a, "sam")
    sign_in(a, key)
    b.cookies.set("srflow_session", a.cookies.get("srflow_session") or "", path="/ui")
    idle = timedelta(seconds=UISettings().session_idle_s + 1)
    with session_factory(url)() as s:
        s.execute(update(DashboardSession).values(seen_time=utcnow() - idle))
        s.commit()
    assert b.get("/ui/jobs").status_code == 303
    sign_in(a, key)
    b.cookies.set("srflow_session", a.cookies.get("srflow_session") or "", path="/ui")
    with session_factory(url)() as s:
        s.execute(update(DashboardSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert b.get("/ui/jobs").status_code == 303
    assert _rows(url) == []


def test_a_deleted_key_deletes_its_sessions(two: tuple[TestClient, TestClient, str]) -> None:
    a, _, url = two
    key, prefix = _make_key(a, "sam")
    sign_in(a, key)
    assert len(_rows(url)) == 1
    with session_factory(url)() as s:
        s.execute(text("DELETE FROM api_keys WHERE prefix = :p"), {"p": prefix})
        s.commit()
    assert _rows(url) == []  # ON DELETE CASCADE


def test_past_max_sessions_the_longest_idle_ends(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with _app(tmp_path, url) as a:
        key, prefix = _make_key(a, "sam")
    store = SessionStore(UISettings(max_sessions=3), url)
    caller = Caller("sam", ("lab-s",), False, prefix)
    made = [store.create(key, caller) for _ in range(5)]
    sids = [m[0] for m in made if m is not None]
    assert len(sids) == 5 and len(_rows(url)) == 3
    assert [store.get(sid) is not None for sid in sids] == [False, False, True, True, True]
    assert store.create("srf_00000000_" + "x" * 20, caller) is None  # not the key's secret
    assert seal(sids[0], key) != seal(sids[1], key)

"""A lab for the dashboard tests: the app in-process (TestClient: no worker, jobs stay
queued) with three users — alice and carol in lab-a, bob in lab-b — and the form helpers
(CSRF token, idempotency key, signing in)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings

ADMIN = "srf_a11ce0ad_ui-tests-admin-key"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_IDEM = re.compile(r'name="idempotency_key" value="([^"]+)"')


@dataclass
class Lab:
    client: TestClient  # holds the lifespan; admin bearer calls
    keys: dict[str, str]

    def user(self, name: str, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.client.app, base_url=base_url, follow_redirects=False)

    def api(self, name: str, method: str, path: str, **kw: object) -> object:
        return self.client.request(method, path, headers={
            "Authorization": f"Bearer {self.keys[name]}"}, **kw)  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    m = _TOKEN.search(html)
    assert m, html[:2000]
    return m.group(1)


def idem_of(html: str) -> str:
    m = _IDEM.search(html)
    assert m, html[:2000]
    return m.group(1)


def sign_in(c: TestClient, key: str) -> str:
    """Sign in through the form; returns the session's CSRF token (from the next page)."""
    page = c.get("/ui/signin")
    r = c.post("/ui/signin", data={"csrf_token": csrf_of(page.text), "api_key": key,
                                   "next": "/ui/jobs"})
    assert r.status_code == 303 and r.headers["location"] == "/ui/jobs", r.text
    return csrf_of(c.get("/ui/jobs").text)


def make_lab(data_dir: Path) -> Iterator[Lab]:
    app = create_app(Settings(data_dir=data_dir, admin_key=ADMIN))
    with TestClient(app, follow_redirects=False) as c:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        keys = {"admin": ADMIN}
        for group in ("lab-a", "lab-b"):
            assert c.post("/v1/groups", json={"name": group}, headers=admin).status_code == 201
        for user, group in (("alice", "lab-a"), ("carol", "lab-a"), ("bob", "lab-b")):
            r = c.post("/v1/users", json={"name": user, "groups": [group]}, headers=admin)
            assert r.status_code == 201, r.text
            r = c.post(f"/v1/users/{user}/keys", json={}, headers=admin)
            assert r.status_code == 201, r.text
            keys[user] = r.json()["key"]
        yield Lab(c, keys)

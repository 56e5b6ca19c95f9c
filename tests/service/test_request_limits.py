"""Request bodies are bounded before anything reads them: a body over max_request_bytes is
refused with 413 before authentication (on its Content-Length, or as it streams), JSON
nested deeper than 32 levels with 422, and POST /v1/jobs checks the key before it parses
the body. Driven through the app's ASGI callable so the bytes the app pulls are counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings

KEY = "srf_b0d711e5_request-limits-admin-key"
PROBLEM = "application/problem+json"
CHUNK = 64 * 2**10


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    application = create_app(Settings(data_dir=tmp_path, admin_key=KEY,
                                      max_request_bytes=2**20))
    with TestClient(application):  # runs the start-up (migrations, the admin key)
        yield application


def send(app: FastAPI, path: str, body_size: int, *, declared: bool,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], int]:
    """POST ``body_size`` bytes of a JSON-looking body, pulled lazily by the app; returns
    (status, problem document, bytes the app pulled)."""
    pulled = 0
    left = body_size
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal pulled, left
        if left <= 0:
            await asyncio.sleep(3600)
        n = min(CHUNK, left)
        left -= n
        pulled += n
        return {"type": "http.request", "body": b"[" + b" " * (n - 1) if n else b"",
                "more_body": left > 0}

    async def send_(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] += msg.get("body", b"")

    hdrs = {"content-type": "application/json", **(headers or {})}
    if declared:
        hdrs["content-length"] = str(body_size)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80),
             "headers": [(k.encode(), v.encode()) for k, v in hdrs.items()]}
    asyncio.run(asyncio.wait_for(app(scope, receive, send_), 30))
    doc = json.loads(out["body"]) if out["body"] else {}
    return int(out["status"]), doc, pulled


def test_a_30_mib_job_body_without_a_key_is_refused_with_413_unread(app: FastAPI) -> None:
    """Before: 401 after the whole body had been read and parsed (the API's memory grew
    by ~190 MiB for one such request)."""
    status, doc, pulled = send(app, "/v1/jobs", 30 * 2**20, declared=True)
    assert status == 413, doc
    assert doc["status"] == 413 and "max_request_bytes=1048576" in doc["detail"]
    assert doc["errors"] == [{"field": "body", "message": doc["errors"][0]["message"]}]
    assert pulled == 0


def test_a_streamed_body_over_the_limit_is_cut_off_at_the_limit(app: FastAPI) -> None:
    status, doc, pulled = send(app, "/v1/jobs", 30 * 2**20, declared=False,
                               headers={"authorization": f"Bearer {KEY}"})
    assert status == 413, doc
    assert pulled <= 2**20 + CHUNK


def test_the_key_is_checked_before_the_job_body_is_parsed(app: FastAPI) -> None:
    """Before: a body that is not JSON answered 422 to a caller without a key."""
    with TestClient(app) as c:
        r = c.post("/v1/jobs", content=b"{not json", headers={"content-type":
                                                              "application/json"})
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == PROBLEM
        r = c.post("/v1/jobs", content=b"{not json", headers={
            "content-type": "application/json", "authorization": f"Bearer {KEY}"})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "body"
        r = c.post("/v1/jobs", json=[1, 2], headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/groups", "/v1/users/admin/keys"])
def test_a_body_nested_deeper_than_32_is_refused_with_422(app: FastAPI, path: str) -> None:
    """Before: a job body 5000 levels deep answered 400 ("error parsing the body")."""
    deep = "[" * 5000 + "]" * 5000
    with TestClient(app) as c:
        r = c.post(path, content=f'{{"kind": "hmc", "spec": {deep}}}'.encode(),
                   headers={"content-type": "application/json",
                            "authorization": f"Bearer {KEY}"})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["errors"][0]["field"] == "body"
        assert "nested deeper than 32" in r.json()["detail"]
        nested_ok = {"kind": "hmc", "spec": {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01,
                                             "n_samples": 64}}
        if path == "/v1/jobs":  # ordinary bodies are unaffected
            r = c.post(path, json=nested_ok, headers={"authorization": f"Bearer {KEY}"})
            assert r.status_code in (202, 503), r.text

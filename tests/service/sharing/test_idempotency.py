"""Idempotency-Key on POST /v1/jobs and POST /v1/models, and 50 concurrent submissions."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.registry.flowfiles import write_flow
from tests.service.helpers import SMALL_HMC
from tests.service.processes import Service
from tests.service.sharing.members import make_member
from tests.service.sharing.uploading import upload_zip, zip_dir

pytestmark = [pytest.mark.service, pytest.mark.slow]


def _hmc(seed: int) -> dict:
    return {"kind": "hmc", "spec": {**SMALL_HMC, "seed": seed}}


def test_50_concurrent_submissions_some_sharing_keys(api_only: Service) -> None:
    svc = api_only
    user = make_member(svc, f"gc-{uuid.uuid4().hex[:6]}", max_queued_jobs=1000)
    plan = [(_hmc(i), None) for i in range(30)]
    plan += [(_hmc(100 + k), f"key-{k}") for k in range(10) for _ in range(2)]
    statuses: list[int] = []
    stop = threading.Event()

    def submit(item: tuple[dict, str | None]) -> tuple[str | None, str]:
        body, key = item
        headers = {"Idempotency-Key": key} if key else {}
        with user.client(svc) as c:
            for _ in range(100):
                r = c.post("/v1/jobs", json=body, headers=headers)
                statuses.append(r.status_code)
                if r.status_code != 409:
                    assert r.status_code == 202, r.text
                    return key, r.json()["name"]
                time.sleep(0.05)
        raise AssertionError("still 409 after 100 tries")

    def poll() -> None:
        with user.client(svc) as c:
            while not stop.is_set():
                r = c.get("/v1/jobs", params={"page_size": 100})
                statuses.append(r.status_code)
                for op in r.json()["operations"][:5]:
                    statuses.append(c.get(f"/v1/{op['name']}").status_code)

    with ThreadPoolExecutor(max_workers=26) as pool:
        pollers = [pool.submit(poll) for _ in range(2)]
        results = list(pool.map(submit, plan))
        stop.set()
        for p in pollers:
            p.result()
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    assert set(statuses) <= {200, 202, 409}
    by_key: dict[str, set[str]] = {}
    for key, name in results:
        if key:
            by_key.setdefault(key, set()).add(name)
    assert all(len(names) == 1 for names in by_key.values()) and len(by_key) == 10
    names = {name for _, name in results}
    assert len(names) == 40
    with user.client(svc) as c:
        listed = [o["name"] for o in c.get("/v1/jobs", params={"page_size": 200})
                  .json()["operations"]]
    assert sorted(listed) == sorted(names)  # none lost, none duplicated


def test_job_key_with_another_body_is_422(api_only: Service) -> None:
    user = make_member(api_only, f"gk-{uuid.uuid4().hex[:6]}")
    with user.client(api_only) as c:
        a = c.post("/v1/jobs", json=_hmc(1), headers={"Idempotency-Key": "k"})
        b = c.post("/v1/jobs", json=_hmc(1), headers={"Idempotency-Key": "k"})
        d = c.post("/v1/jobs", json=_hmc(2), headers={"Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 202 and a.json()["name"] == b.json()["name"]
    assert d.status_code == 422 and d.json()["errors"][0]["field"] == "Idempotency-Key"


def _record_exists(db: Path, key: str) -> bool:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM idempotency WHERE key = ?",
                           (key,)).fetchone()[0] == 1


def test_upload_key_replays_conflicts_and_mismatches(api_only: Service, tmp_path: Path) -> None:
    svc = api_only
    user = make_member(svc, f"gu-{uuid.uuid4().hex[:6]}")
    body = zip_dir(write_flow(tmp_path / "a"))
    gate = threading.Event()
    out: dict[str, object] = {}

    def slow() -> Iterator[bytes]:
        yield body[:100]
        assert gate.wait(30)
        yield body[100:]

    def first() -> None:
        with user.client(svc) as c:
            out["r"] = c.post("/v1/models", params={"name": "idem-flow", "visibility": "group"},
                              content=slow(),
                              headers={"Content-Type": "application/zip",
                                       "Idempotency-Key": "up-1"})

    t = threading.Thread(target=first)
    t.start()
    deadline = time.monotonic() + 20
    while not _record_exists(svc.data_dir / "registry.db", "up-1"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with user.client(svc) as c:
        busy = upload_zip(c, body, "idem-flow", **{"Idempotency-Key": "up-1"})
        gate.set()
        t.join(30)
        r1: object = out["r"]
        again = upload_zip(c, body, "idem-flow", **{"Idempotency-Key": "up-1"})
        other = upload_zip(c, zip_dir(write_flow(tmp_path / "b", metrics={"ess": 0.9})),
                           "idem-flow", **{"Idempotency-Key": "up-1"})
        versions = c.get("/v1/models/idem-flow").json()["versions"]
    assert busy.status_code == 409 and "still being processed" in busy.json()["detail"]
    assert r1.status_code == 201, r1.text  # type: ignore[attr-defined]
    assert again.status_code == 201 and again.json() == r1.json()  # type: ignore[attr-defined]
    assert other.status_code == 422 and "different upload" in other.json()["detail"]
    assert [v["version"] for v in versions] == [1]

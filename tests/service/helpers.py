"""Round trips shared by the Redis and the embedded service tests."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import h5py
import httpx

from core.client import SrflowClient
from tests.service.processes import ADMIN_KEY, Service

SMALL_HMC = {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "n_samples": 64, "chains": 4,
             "n_therm": 20, "seed": 3}


def sse_events(svc: Service, job_id: str, timeout: float = 120.0) -> list[tuple[str, dict]]:
    """(event, operation) pairs from GET /v1/jobs/{id}/events, read raw off the wire."""
    out: list[tuple[str, dict]] = []
    with svc.client() as c, c.stream("GET", f"/v1/jobs/{job_id}/events",
                                     timeout=httpx.Timeout(10, read=timeout)) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        event, data = "message", []
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                out.append((event, json.loads("\n".join(data))))
                event, data = "message", []
    return out


def submit(svc: Service, kind: str, spec: dict[str, Any], **extra: Any) -> str:
    with svc.client() as c:
        r = c.post("/v1/jobs", json={"kind": kind, "spec": spec, **extra})
    assert r.status_code == 202, r.text
    op = r.json()
    assert op["done"] is False and op["metadata"]["state"] == "queued"
    assert r.headers["location"] == f"/v1/{op['name']}"
    return str(op["name"].removeprefix("jobs/"))


def follow_to_success(svc: Service, job_id: str) -> dict[str, Any]:
    events = sse_events(svc, job_id)
    states = [op["metadata"]["state"] for _, op in events]
    final_event, final = events[-1]
    assert final_event == "done", (states, svc.dump_logs())
    assert final["metadata"]["state"] == "succeeded", (final, svc.dump_logs())
    order = {"queued": 0, "running": 1, "succeeded": 2}
    assert [order[s] for s in states] == sorted(order[s] for s in states)
    return final


def check_ensemble_download(svc: Service, ensemble_id: str, tmp: Path) -> dict[str, Any]:
    """Whole file via the client (sha256 checked), then Range requests against it."""
    with svc.client() as c:
        meta = c.get(f"/v1/ensembles/{ensemble_id}").json()
        url = f"/v1/ensembles/{ensemble_id}/download"
        whole = c.get(url)
        assert whole.status_code == 200
        body = whole.content
        sha = hashlib.sha256(body).hexdigest()
        assert sha == meta["sha256"] and len(body) == meta["size"]
        assert whole.headers["etag"] == f'"{sha}"'
        b64 = base64.b64encode(bytes.fromhex(sha)).decode()
        assert whole.headers["repr-digest"] == f"sha-256=:{b64}:"
        part = c.get(url, headers={"Range": "bytes=100-1123"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1123/{len(body)}"
        assert part.content == body[100:1124]
        tail = c.get(url, headers={"Range": "bytes=-200"})
        assert tail.status_code == 206 and tail.content == body[-200:]
        bad = c.get(url, headers={"Range": f"bytes={len(body)}-"})
        assert bad.status_code == 416
        assert bad.headers["content-range"] == f"bytes */{len(body)}"
        assert bad.headers["content-type"] == "application/problem+json"
    with SrflowClient(svc.url, ADMIN_KEY) as client:
        dest = tmp / f"{ensemble_id}.h5"
        dest.with_name(dest.name + ".part").write_bytes(body[:777])  # resume with Range
        got = client.download_ensemble(ensemble_id, dest)
    assert got.sha256 == sha and dest.read_bytes() == body
    return meta


def hmc_roundtrip(svc: Service, tmp: Path) -> None:
    job_id = submit(svc, "hmc", SMALL_HMC)
    final = follow_to_success(svc, job_id)
    ens = final["response"]["ensemble"]
    assert final["metadata"]["progress"]["step"] == final["metadata"]["progress"]["total"]
    meta = check_ensemble_download(svc, ens["id"], tmp)
    assert meta["job_id"] == job_id and meta["n"] == 64
    assert meta["theory"] == {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01}
    assert "susceptibility" in meta["observables"]
    with h5py.File(tmp / f"{ens['id']}.h5", "r") as f:
        assert f.attrs["srflow_job_id"] == job_id
        assert f.attrs["srflow_ensemble_id"] == ens["id"]
        assert f["configs"].shape == (64, 8, 8)


def wait_state(svc: Service, job_id: str, pred: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with svc.client() as c:
        while time.monotonic() < deadline:
            op = c.get(f"/v1/jobs/{job_id}").json()
            if pred(op):
                return dict(op)
            time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the state\n{svc.dump_logs()}")

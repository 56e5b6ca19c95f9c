"""Group members and blob listings for the sharing tests, and their server settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.service.processes import ADMIN_KEY, Service

UPLOAD_LIMIT = 300_000
# 10 s, not 5: on a loaded 2-core machine the heartbeat thread was starved for > 5 s and a
# live job was reaped three times (WorkerLost) — seen while benchmarks ran beside the suite
FAST_RECOVERY = {"SRFLOW_HEARTBEAT_TIMEOUT_S": "10", "SRFLOW_HEARTBEAT_INTERVAL_S": "0.5",
                 "SRFLOW_PROGRESS_INTERVAL_S": "0.2"}


@dataclass(frozen=True)
class Member:
    name: str
    group: str
    key: str
    prefix: str

    def client(self, svc: Service) -> httpx.Client:
        return svc.client(self.key)


def make_member(svc: Service, group: str, name: str | None = None, **quota: int) -> Member:
    """A user in ``group`` (created if new, with ``quota`` overrides) and a fresh key."""
    name = name or f"u{uuid.uuid4().hex[:8]}"
    with svc.client(ADMIN_KEY) as c:
        r = c.post("/v1/groups", json={"name": group, **quota})
        assert r.status_code in (201, 409), r.text
        r = c.post("/v1/users", json={"name": name, "groups": [group]})
        assert r.status_code == 201, r.text
        r = c.post(f"/v1/users/{name}/keys")
        assert r.status_code == 201, r.text
    return Member(name, group, r.json()["key"], r.json()["prefix"])


def blob_files(data_dir: Path) -> list[Path]:
    root = data_dir / "artifacts" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

"""The embedded default: ``srflow serve`` with no broker (filesystem transport, SQLite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.service.helpers import hmc_roundtrip
from tests.service.processes import Service

pytestmark = [pytest.mark.service, pytest.mark.slow]


def test_embedded_health_names_the_worker(embedded_service: Service) -> None:
    with embedded_service.client() as c:
        h = c.get("/v1/health").json()
    assert h["embedded"] is True and h["broker"]["transport"] == "filesystem"
    assert h["workers"]["ok"] and h["workers"]["names"][0].startswith("embedded@")
    assert not (embedded_service.data_dir / "redis").exists()


def test_hmc_job_round_trip_embedded(embedded_service: Service, tmp_path: Path) -> None:
    hmc_roundtrip(embedded_service, tmp_path)
    broker = embedded_service.data_dir / "broker"
    assert list((broker / "processed").iterdir()) == []  # processed messages deleted
    assert list((broker / "queue").iterdir()) == []  # nothing left in flight

"""Deployment files, checked without a Docker engine (none runs here): docker-compose.yml
against the compose-spec JSON schema vendored by check-jsonschema, plus the structure the
service relies on; the Dockerfile's pins and commands."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())  # type: ignore


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    assert "services" in schema["properties"]  # the real schema, not an empty one
    jsonschema.validate(compose, schema)
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"] = "gpu"
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        jsonschema.validate(broken, schema)


def test_compose_structure_the_service_relies_on(compose: dict[str, Any]) -> None:
    svc = compose["services"]
    assert set(svc) == {"api", "worker", "redis", "flower"}
    assert "--appendonly" in svc["redis"]["command"] and "yes" in svc["redis"]["command"]
    devices = svc["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["count"] == 1
    for name in ("api", "worker"):
        env = svc[name]["environment"]
        assert env["SRFLOW_BROKER_URL"].startswith("redis://redis:")
        assert env["SRFLOW_ADMIN_KEY"].startswith("${SRFLOW_ADMIN_KEY")
        assert "srflow-data:/data" in svc[name]["volumes"]
        assert svc[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in svc:
        assert svc[name]["healthcheck"]["test"]
    assert svc["api"]["command"][:2] == ["srflow", "serve"]
    assert svc["worker"]["command"][:2] == ["srflow", "worker"]
    assert set(compose["volumes"]) == {"srflow-data", "redis-data"}


def test_dockerfile_pins_torch_and_runs_srflow() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert '"torch==2.13.0"' in text and "whl/cpu" in text
    assert 'CMD ["srflow", "serve"' in text and "HEALTHCHECK" in text

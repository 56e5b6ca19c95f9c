"""Deployment files, checked without a Docker engine (scripts/compose-check runs them for
real with podman; not in CI: the image is gigabytes): docker-compose.yml against the
compose-spec JSON schema vendored by check-jsonschema, plus the structure the service
relies on; the Dockerfile's pins and commands; health checks that Docker, podman and
podman-compose 1.0.3 all run unchanged."""

from __future__ import annotations

import json
import re
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from cli.main import build_parser

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
    assert set(svc) == {"api", "worker", "redis", "postgres", "flower"}
    assert "--appendonly" in svc["redis"]["command"] and "yes" in svc["redis"]["command"]
    assert svc["postgres"]["image"].startswith("postgres:")
    assert "postgres-data:/var/lib/postgresql/data" in svc["postgres"]["volumes"]
    assert svc["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    devices = svc["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["count"] == 1
    for name in ("api", "worker"):
        env = svc[name]["environment"]
        assert env["SRFLOW_BROKER_URL"].startswith("redis://redis:")
        assert env["SRFLOW_ADMIN_KEY"].startswith("${SRFLOW_ADMIN_KEY")
        assert env["SRFLOW_DATABASE_URL"].startswith("postgresql+psycopg://srflow:")
        assert "@postgres:5432/srflow" in env["SRFLOW_DATABASE_URL"]
        assert "srflow-data:/data" in svc[name]["volumes"]
        # start order for Docker; readiness is not left to the condition (podman-compose
        # ignores it): srflow serve / srflow worker wait for the database and the broker
        assert set(svc[name]["depends_on"]) >= {"postgres", "redis"}
    assert svc["api"]["command"][:2] == ["srflow", "serve"] and "--workers" in svc["api"]["command"]
    assert svc["worker"]["command"][:2] == ["srflow", "worker"]
    assert svc["api"]["build"]["args"]["TORCH"].startswith("${SRFLOW_TORCH")
    assert set(compose["volumes"]) == {"srflow-data", "redis-data", "postgres-data"}


def _plain(words: list[str]) -> bool:
    """podman-compose 1.0.3 runs ``["CMD", *words]`` as ``/bin/sh -c`` of the words shell-
    quoted and joined with ``' '``: only words that need no quoting survive that intact."""
    return all(shlex.quote(w) == w for w in words)


def test_health_checks_are_exec_form_plain_words(compose: dict[str, Any]) -> None:
    assert _plain(["pg_isready", "-U", "srflow"]) and not _plain(["python", "-c", "import x; y()"])
    for name, service in compose["services"].items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD", (name, test)  # no CMD-SHELL, no $HOSTNAME
        assert _plain(test[1:]), (name, test)
    parser = build_parser()  # the probes are real verbs
    for name in ("api", "worker"):
        words = compose["services"][name]["healthcheck"]["test"][1:]
        assert words[0] == "srflow"
        args = parser.parse_args(words[1:])
        assert args.command == "probe" and args.component == name


def test_dockerfile_pins_torch_and_runs_srflow() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert '"torch==2.13.0"' in text and "whl/cpu" in text
    assert "ARG TORCH=cpu" in text and "cuda)" in text and "cpu)" in text  # a build argument
    assert "--format docker" in text  # podman keeps HEALTHCHECK only in the docker format
    assert 'CMD ["srflow", "serve"' in text
    health = re.search(r"^HEALTHCHECK .*\n\s*CMD (\[.*\])$", text, re.M)
    assert health and json.loads(health.group(1)) == ["srflow", "probe", "api"]
    # the service, not the client-only base install; every package the image runs
    assert "['optional-dependencies']['service']" in text
    assert 'pip install --no-deps ".[service]"' in text
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert copied == {"core", "app", "worker", "cli"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored

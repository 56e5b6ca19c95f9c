"""The client installs alone: ``pip install ".[client]"`` in a fresh virtual environment
gives ``SrflowClient`` and the ``srflow`` client verbs with httpx and pydantic, and no
torch, Celery, SQLAlchemy or FastAPI; a round trip against a running server works from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.helpers import SMALL_HMC
from tests.service.processes import ADMIN_KEY, ROOT, Service

pytestmark = [pytest.mark.service, pytest.mark.slow]
SERVICE_ONLY = ("torch", "torchdiffeq", "celery", "sqlalchemy", "fastapi", "h5py", "numpy")


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    venv = tmp_path_factory.mktemp("client-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", f"{ROOT}[client]"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert pip.returncode == 0, pip.stderr[-3000:]
    yield venv


def in_venv(venv: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=venv,
                          env={**clean, **(env or {})}, stdin=subprocess.DEVNULL)


def test_the_client_extra_brings_no_service_dependency(client_venv: Path) -> None:
    py = str(client_venv / "bin" / "python")
    probe = in_venv(client_venv, py, "-c", "import importlib.util, json; print(json.dumps("
                    f"{{m: importlib.util.find_spec(m) is not None for m in {SERVICE_ONLY!r}}}))")
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == dict.fromkeys(SERVICE_ONLY, False)
    ok = in_venv(client_venv, py, "-c", "from core.client import SrflowClient; print('ok')")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    helped = in_venv(client_venv, str(client_venv / "bin" / "srflow"), "status", "--help")
    assert helped.returncode == 0 and "--url" in helped.stdout, helped.stderr
    # a service verb says what is missing in one line instead of a traceback
    train = in_venv(client_venv, str(client_venv / "bin" / "srflow"), "hmc", "--dim", "1",
                    "--L", "8", "--kappa", "0.1", "--lam", "0", "--n-samples", "8")
    assert train.returncode != 0
    assert "Traceback" not in train.stderr and len(train.stderr.strip().splitlines()) == 1
    assert "service" in train.stderr


def test_round_trip_from_the_client_only_install(client_venv: Path, embedded_service: Service,
                                                 tmp_path: Path) -> None:
    srflow = str(client_venv / "bin" / "srflow")
    env = {"SRFLOW_URL": embedded_service.url, "SRFLOW_KEY": ADMIN_KEY}
    params = [f"{k}={v}" for k, v in SMALL_HMC.items()]
    sub = in_venv(client_venv, srflow, "submit", "hmc", *params, "--wait", "--json", env=env)
    assert sub.returncode == 0, sub.stdout + sub.stderr
    op = json.loads(sub.stdout)
    assert op["metadata"]["state"] == "succeeded"
    status = in_venv(client_venv, srflow, "status", op["name"], "--json", env=env)
    assert status.returncode == 0 and json.loads(status.stdout)["done"] is True
    out = tmp_path / "ens.h5"
    got = in_venv(client_venv, srflow, "download", "ensemble", op["name"], "-o", str(out),
                  "--json", env=env)
    assert got.returncode == 0, got.stderr
    d = json.loads(got.stdout)
    assert d["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert d["sha256"] == op["response"]["ensemble"]["sha256"]

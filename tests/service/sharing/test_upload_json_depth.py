"""JSON nested too deep in an upload is refused with 422 before it is parsed or stored, and
a version stored with such JSON earlier still reads (in process, POST /v1/models)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.registry import catalog, jobs
from core.registry.db import session_scope
from core.registry.keys import Caller
from core.registry.store import Blob
from tests.registry.flowfiles import CONFIG, write_flow
from tests.service.sharing.inprocess import PROBLEM, Lab, running_lab
from tests.service.sharing.members import blob_files


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as lab:
        yield lab


def _deep_header(path: Path, depth: int) -> None:
    """model.safetensors whose JSON header holds an array nested ``depth`` deep."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = {"format": "srflow-flow"}
    text = json.dumps(header)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    body = text.encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + n:])


def test_a_metrics_json_nested_400_deep_is_refused_and_the_model_stays_readable(
        lab: Lab, tmp_path: Path) -> None:
    """Before: accepted (201); GET /v1/models/NAME then answered 500 to every reader."""
    alice = lab.member("alice", "lab-a")
    bob = lab.member("bob", "lab-a")
    assert lab.upload(alice, "shared", "group", write_flow(tmp_path / "good")).status_code == 201
    deep = write_flow(tmp_path / "deep", metrics={"ess": 0.5, "extra": nested(400)})
    r = lab.upload(bob, "shared", "group", deep)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == "metrics.json"
    assert "nested deeper than 32" in r.json()["detail"]
    for path in ("/v1/models/shared", "/v1/models/shared/versions/1", "/v1/models",
                 "/v1/models/shared/versions/1/download"):
        assert lab.get(alice, path).status_code == 200, path
    assert [v["version"] for v in lab.get(bob, "/v1/models/shared").json()["versions"]] == [1]


@pytest.mark.parametrize(("where", "depth"), [("config.json", 950), ("metrics.json", 950),
                                            ("registry.json", 950),
                                            ("model.safetensors", 5000)])
def test_json_nested_950_deep_is_refused_with_422_and_nothing_is_stored(
        lab: Lab, tmp_path: Path, where: str, depth: int) -> None:
    """Before: 500 (RecursionError or a serialization error) — for metrics.json after the
    version was stored."""
    alice = lab.member("alice", "lab-a")
    d = write_flow(tmp_path / where)
    if where == "config.json":
        (d / where).write_text(json.dumps({**CONFIG, "theory": {"kappa": 0.25, "lam": 0.01,
                                                                "x": nested(depth)}}))
    elif where == "model.safetensors":
        _deep_header(d / where, depth)
    else:
        (d / where).write_text(json.dumps({"ess": 0.5, "x": nested(depth)}))
    r = lab.upload(alice, "deep", "group", d)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == where
    assert "nested deeper than 32" in r.json()["errors"][0]["message"]
    assert lab.get(alice, "/v1/models/deep").status_code == 404
    assert lab.get(alice, "/v1/models").json()["model_versions"] == []
    assert blob_files(lab.settings.root) == []


def test_a_version_stored_with_deep_json_before_the_limit_still_reads(lab: Lab) -> None:
    """A row written before the limit existed answers 200, the deep value withheld."""
    alice = lab.member("alice", "lab-a")
    with session_scope(lab.settings.db_url) as s:
        job = jobs.create_job(s, job_id="old", kind="train", queue="cpu", spec={},
                              caller=Caller("alice", ("lab-a",), False, ""))
        blob = Blob(sha256="a" * 64, size=1, relpath="blobs/old")
        catalog.register_model_version(
            s, name="old-m", job=job, files={"model.safetensors": blob},
            fields={"dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "method": "ir",
                    "metrics": {"ess": 0.5, "x": nested(400)}, "config": CONFIG,
                    "curve": [nested(400)]})
    for path in ("/v1/models/old-m", "/v1/models/old-m/versions/1"):
        r = lab.get(alice, path)
        assert r.status_code == 200, (path, r.text)
    v = lab.get(alice, "/v1/models/old-m/versions/1").json()
    assert v["config"] == CONFIG and v["curve"] is None
    assert v["metrics"] is None and "nested deeper than 32" in v["withheld"]["metrics"]

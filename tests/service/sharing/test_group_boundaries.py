"""Group boundaries over HTTP, in process: a version a member of two groups trains into one
group's model belongs to that model's group (not the job's), and a group's reserved name
prefix holds in any letter case."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import core.jobs.run
from tests.registry.flowfiles import write_flow
from tests.service.sharing.inprocess import ADMIN, TRAIN, Lab, running_lab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as lab:
        yield lab


@pytest.fixture
def trained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every train job 'trains' by handing back this flow directory."""
    flow = write_flow(tmp_path / "trained")

    def fake_run_job(*_: Any, **__: Any) -> Any:
        return SimpleNamespace(summary={"model": str(flow)}, ensemble=None,
                               model_dir=str(flow))

    monkeypatch.setattr(core.jobs.run, "run_job", fake_run_job)
    return flow


def test_a_version_trained_into_a_group_model_takes_the_models_group(
        lab: Lab, trained: Path, tmp_path: Path) -> None:
    """Before: the version was stamped with the job's group (carol's first, lab-b), so every
    lab-b member saw lab-a's model in GET /v1/models while GET /v1/models/NAME said 404."""
    alice = lab.member("alice", "lab-a")
    carol = lab.member("carol", ["lab-b", "lab-a"])  # lab-b first: her jobs are lab-b's
    dave = lab.member("dave", "lab-b")
    assert lab.upload(alice, "lab-a-only", "group", write_flow(tmp_path / "a")).status_code \
        == 201
    op = lab.finish(lab.submit(carol, model_name="lab-a-only"))
    assert op["metadata"]["state"] == "succeeded", op
    assert op["metadata"]["group"] == "lab-b" and op["response"]["model"]["version"] == 2
    assert [v["ref"] for v in lab.get(dave, "/v1/models").json()["model_versions"]] == []
    assert lab.get(dave, "/v1/models/lab-a-only").status_code == 404
    assert lab.get(dave, "/v1/models/lab-a-only/versions/2").status_code == 404
    versions = lab.get(alice, "/v1/models/lab-a-only").json()["versions"]
    assert [(v["version"], v["owner"], v["group"]) for v in versions] == [
        (1, "alice", "lab-a"), (2, "carol", "lab-a")]
    assert lab.get(carol, "/v1/models/lab-a-only/versions/2").status_code == 200


@pytest.mark.parametrize("name", ["LAB-A.mine", "Lab-A.ir-d2-L8-k0.25-l0.01", "lab-A.x"])
def test_a_group_prefix_is_reserved_in_any_letter_case(
        lab: Lab, tmp_path: Path, name: str) -> None:
    """Before: 'LAB-A.…' was free for lab-b to take (the reserved-prefix check compared
    names case-sensitively)."""
    lab.member("alice", "lab-a")
    bob = lab.member("bob", "lab-b")
    r = lab.upload(bob, name, "private", write_flow(tmp_path / "b"))
    assert r.status_code == 403, r.text
    assert "reserved to group 'lab-a'" in r.json()["detail"]
    r = lab.client.post("/v1/jobs", json={"kind": "train", "spec": TRAIN, "model_name": name},
                        headers=lab.auth(bob))
    assert r.status_code == 403, r.text
    assert lab.get(ADMIN, f"/v1/models/{name}").status_code == 404


def test_a_group_name_differing_only_in_case_is_refused(lab: Lab) -> None:
    lab.member("alice", "lab-a")
    r = lab.client.post("/v1/groups", json={"name": "LAB-A"}, headers=lab.auth(ADMIN))
    assert r.status_code == 409, r.text
    assert "'lab-a'" in r.json()["detail"]

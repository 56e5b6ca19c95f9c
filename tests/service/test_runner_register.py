"""A job whose outputs cannot be registered ends failed, not running until the reaper."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import core.jobs.run
from core.registry import jobs as rows
from core.registry.db import session_scope, upgrade
from core.registry.keys import Caller
from core.settings import Settings
from worker.runner import execute


def test_a_train_job_without_weights_fails_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade(settings.db_url)
    spec = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 1}
    with session_scope(settings.db_url) as s:
        rows.create_job(s, job_id="t1", kind="train", spec=spec, queue="cpu",
                        caller=Caller("alice", ("lab-a",), False, ""))
    empty = tmp_path / "no-weights"
    empty.mkdir()

    def fake_run_job(*_: Any, **__: Any) -> Any:  # trained, but wrote no model.safetensors
        return SimpleNamespace(summary={}, ensemble=None, model_dir=str(empty))

    monkeypatch.setattr(core.jobs.run, "run_job", fake_run_job)
    assert execute("t1", settings, token="a1", hostname="test") == "failed"
    with session_scope(settings.db_url) as s:
        job = rows.get_job(s, "t1")
        assert job is not None and job.status == "failed"
        assert job.error_type == "FileNotFoundError" and "model.safetensors" in str(
            job.error_message)

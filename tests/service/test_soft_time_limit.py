"""The soft time limit (``soft_time_limit_s``, DESIGN.md section 8): a train job
over it checkpoints, is handed back to the queue and re-sent, the next attempt resumes
from the checkpoint and the job finishes once — one model version, whose curve starts
with the checkpoint's rows — and a late duplicate delivery changes nothing.

In process through ``worker.runner.execute`` (the Celery task's body), with the re-send
to the broker recorded instead of sent. The soft limit is real (``Deadline`` with
``soft_time_limit_s``), but its clock jumps an hour once the third training step has been
reported: on a loaded 2-core machine a step takes 0.2–3 s, so a wall-clock limit would
stop the job before its first step or never.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

import worker.resilience
import worker.runner
from core.registry import jobs as rows
from core.registry.db import session_scope, upgrade
from core.registry.keys import Caller
from core.registry.models import ModelVersion
from core.settings import Settings
from worker.runner import execute

SPEC = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "steps": 8,
        "batch": 16, "seed": 1, "grow": False, "langevin_therm": 500, "eval_samples": 256}
SOFT_S = 600.0
PREEMPT_AFTER_STEP = 3


class _Clock:
    """``worker.resilience``'s time module: real monotonic time plus ``skip``."""

    skip = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.skip


@pytest.mark.slow
def test_over_the_soft_limit_a_job_checkpoints_requeues_resumes_and_finishes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = {"heartbeat_interval_s": 0.5, "progress_interval_s": 0.1}
    soft = Settings(data_dir=tmp_path, soft_time_limit_s=SOFT_S, **fast)
    upgrade(soft.db_url)
    with session_scope(soft.db_url) as s:
        rows.create_job(s, job_id="t1", kind="train", spec=SPEC, queue="cpu",
                        caller=Caller("alice", ("lab-a",), False, ""), model_name="soft-flow")
    sent: list[Any] = []
    monkeypatch.setattr(worker.runner, "_resend", lambda job: sent.append(job.id))
    clock = _Clock()
    monkeypatch.setattr(worker.resilience, "time", clock)
    report = worker.runner._Monitor.progress

    def progress(mon: Any, p: Any) -> None:
        report(mon, p)
        if p.step >= PREEMPT_AFTER_STEP:
            clock.skip = 3600.0  # past soft_time_limit_s

    monkeypatch.setattr(worker.runner._Monitor, "progress", progress)

    assert execute("t1", soft, token="attempt-1", hostname="w1") == "requeued"
    assert sent == ["t1"]  # handed back to the broker once
    ckpt = soft.work_dir / "t1" / "checkpoint.pt"
    saved = torch.load(ckpt, weights_only=False)["curve"]
    # stopped before the next step (the trainer asks between steps), checkpointed there
    assert [r["step"] for r in saved] == list(range(1, PREEMPT_AFTER_STEP + 1))
    with session_scope(soft.db_url) as s:
        job = rows.get_job(s, "t1")
        assert job is not None and job.status == "queued" and job.attempt_token is None
        assert job.attempts == 1 and job.result is None

    clock.skip = 0.0
    unlimited = Settings(data_dir=tmp_path, **fast)  # the re-sent task's attempt
    assert execute("t1", unlimited, token="attempt-2", hostname="w2") == "succeeded"
    assert execute("t1", unlimited, token="attempt-3", hostname="w3") == "succeeded"  # dup
    assert sent == ["t1"]
    with session_scope(soft.db_url) as s:
        job = rows.get_job(s, "t1")
        assert job is not None and job.status == "succeeded" and job.attempts == 2
        assert job.worker == "w2" and job.result["model"]["version"] == 1  # type: ignore[index]
        versions = s.query(ModelVersion).all()
        assert len(versions) == 1  # finished once
        curve = versions[0].curve
    assert len(curve) == SPEC["steps"]
    assert curve[: len(saved)] == saved  # resumed from the checkpoint, not from scratch
    assert not (soft.work_dir / "t1").exists()  # the checkpoint is cleaned up at the end


def test_the_soft_deadline_waits_for_a_step_but_cancel_does_not() -> None:
    """Thermalisation and the final evaluation write no checkpoint: they ask ``urgent``
    (cancel, lost job, wall-time limit), not the soft deadline — else a thermalisation
    longer than soft_time_limit_s would be re-queued forever, never reaching a step."""
    from core.physics.training.problem import Matching
    from worker.resilience import Deadline

    flag = {"cancel": False}
    soft = Deadline(lambda: flag["cancel"], 0.0)  # the soft limit has passed
    assert soft() and soft.preempted and not soft.urgent()
    flag["cancel"] = True
    assert soft.urgent()
    hard = Deadline(lambda: False, None, limit=0.0)
    assert hard.urgent() and hard.timed_out
    problem = Matching(torch.nn.Linear(1, 1), None, None, None,  # type: ignore[arg-type]
                       torch.Generator())
    problem.set_should_stop(soft)
    assert problem.should_stop == soft.urgent

"""Cancel reaches the long phases outside the trainer's step loop: the IR
source's Langevin thermalisation (5·10⁴ steps, Appendix C) and the final evaluation
(HMC coarse fields + 4096 proposals). Before, both ran to the end whatever the flag said.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from core.jobs.protocol import JobCancelled
from core.jobs.run import run_job
from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.control import SamplingCancelled
from core.physics.mcmc.langevin import LangevinSampler
from core.physics.training.api import GENERATORS, TrainOptions, build_problem, evaluate


def _after(seconds: float) -> tuple[list[float], object]:
    """A should_stop that turns true ``seconds`` from now; records when it first did."""
    start, fired = time.monotonic(), []

    def stop() -> bool:
        now = time.monotonic()
        if now - start >= seconds:
            fired.append(now)
            return True
        return False

    return fired, stop


def test_langevin_thermalisation_stops_within_a_fraction_of_a_second() -> None:
    sampler = LangevinSampler(2, 8, 16, torch.Generator().manual_seed(0))
    before = sampler.phi.clone()
    fired, stop = _after(0.3)
    with pytest.raises(SamplingCancelled, match=r"after \d+ of 50000 steps"):
        sampler.thermalise(0.2, 0.01, 50_000, should_stop=stop)  # type: ignore[arg-type]
    assert time.monotonic() - fired[0] < 0.5
    assert torch.equal(sampler.phi, before)  # the state is not half-updated
    sampler.thermalise(0.2, 0.01, 10, should_stop=lambda: False)  # and it still runs
    assert not torch.equal(sampler.phi, before)


def test_cancel_during_the_thermalisation_of_a_train_job(tmp_path: Path) -> None:
    """The default 5·10⁴ Langevin steps: the job is cancelled in thermalisation, within a
    second of the flag (before, thermalisation finished and only step 0 saw the flag)."""
    spec = TrainSpec(method="ir", dim=2, L=16, kappa=0.25, lam=0.01, steps=5, batch=64)
    fired, stop = _after(0.5)
    with pytest.raises(JobCancelled, match="Langevin thermalisation stopped"):
        run_job(spec, workdir=tmp_path, should_stop=stop)  # type: ignore[arg-type]
    assert time.monotonic() - fired[0] < 1.0
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("method", ["ir", "baseline"])
def test_the_final_evaluation_is_cancellable(method: str) -> None:
    plan = train_plan(TrainSpec(method=method, dim=2, L=8, kappa=0.25, lam=0.01, steps=1,
                                batch=8, langevin_therm=10))
    gens = {k: torch.Generator().manual_seed(i) for i, k in enumerate(GENERATORS)}
    problem, _ = build_problem(plan, TrainOptions(), gens, None)
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1  # one trajectory / chunk, then cancel

    problem.set_should_stop(stop)
    t0 = time.monotonic()
    with pytest.raises(SamplingCancelled):
        evaluate(problem, plan, 4096, gens["init"])
    assert time.monotonic() - t0 < 5.0 and len(calls) == 2

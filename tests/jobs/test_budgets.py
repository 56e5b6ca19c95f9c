"""Job budgets: spec caps, the memory/volume estimates and the parameter count."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from core.jobs.budgets import budget, flow_parameter_count
from core.jobs.specs import EVAL_SAMPLES, LANGEVIN_THERM, HmcSpec, TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.flows.config import count_learnable
from core.physics.training.plan import flow_config
from core.registry import quotas

THEORY = {"kappa": 0.2, "lam": 0.01}
SETTINGS = SimpleNamespace(worker_memory_bytes=16 * 2**30, max_sample_volume=2**34,
                           max_job_seconds=48 * 3600.0)


@pytest.mark.parametrize("spec", [
    {"method": "ir", "dim": 2, "L": 16},
    {"method": "ir", "dim": 2, "L": 32, "field": "hollow", "base": "conditional"},
    {"method": "uv", "dim": 1, "L": 16, "kernel_size": 5, "field": "hollow"},
    {"method": "ir", "dim": 3, "L": 8, "kernel_size": 2, "base": "conditional"},
    {"method": "uv", "dim": 3, "L": 8, "kernel_size": 2, "n_freq": 5},
    {"method": "ir", "dim": 1, "L": 32, "kernel_size": 5, "bond_freq": 7, "bond_time": 3},
    {"method": "baseline", "dim": 2, "L": 10},
    {"method": "baseline", "dim": 3, "L": 6, "n_freq": 4, "n_time": 3},
])
def test_parameter_count_is_the_flows_own(spec: dict) -> None:
    s = TrainSpec(**THEORY, **spec)
    assert flow_parameter_count(s) == count_learnable(flow_config(train_plan(s)))


def test_huge_bond_dimensions_do_not_validate() -> None:
    """Before: a baseline with F' = D' = 10⁶ validated (10¹² parameters per class)."""
    with pytest.raises(ValidationError) as err:
        TrainSpec(**THEORY, method="baseline", L=8, bond_freq=10**6, bond_time=10**6)
    assert {e["loc"][-1] for e in err.value.errors()} == {"bond_freq", "bond_time"}


def test_hmc_chains_and_thermalisation_are_counted() -> None:
    """chains = 4096, L = 512, d = 3: ~TiBs of state; the old volume n_samples·L^d was 1.3·10⁸."""
    spec = HmcSpec(**THEORY, dim=3, L=512, n_samples=1, chains=4096)
    b = budget(spec)
    assert b is not None and b.memory_field == "spec.chains"
    assert b.memory_bytes == 8 * 512**3 * (8 * 4096 + 3 * 4096)  # ⌈1/4096⌉ per chain kept
    assert b.volume == 512**3 * 4096 * (500 + 250 + 1)
    with pytest.raises(quotas.QuotaExceeded) as err:
        quotas.check_budget(SETTINGS, "lab", b, SETTINGS.max_sample_volume)
    assert err.value.field == "spec.chains" and "worker_memory_bytes" in str(err.value)


def test_train_volume_and_batch_memory() -> None:
    """A train job's volume: every step's batch, the final evaluation, and the IR source's
    Langevin thermalisation (batch · coarse_L^d sites per step, once per grow stage: four
    stages from 4³ to 64³)."""
    b = budget(TrainSpec(**THEORY, dim=3, L=64, steps=10**6, batch=2))
    langevin = LANGEVIN_THERM * 2 * 4**3 * 4
    assert b is not None and b.volume == 64**3 * (2 * 10**6 + EVAL_SAMPLES) + langevin
    with pytest.raises(quotas.QuotaExceeded) as err:
        quotas.check_budget(SETTINGS, "lab", b, SETTINGS.max_sample_volume)
    assert err.value.field == "spec.steps" and "max_sample_volume" in str(err.value)
    big = budget(TrainSpec(**THEORY, dim=3, L=128, batch=4096, steps=1))
    assert big is not None and big.memory_field == "spec.batch"
    assert big.memory_bytes > SETTINGS.worker_memory_bytes


def test_paper_scale_jobs_fit_the_default_budget() -> None:
    for b in (budget(TrainSpec(**THEORY, dim=2, L=64, batch=64, steps=5000)),
              budget(TrainSpec(**THEORY, method="baseline", dim=2, L=32, steps=2000)),
              budget(HmcSpec(**THEORY, dim=2, L=64, n_samples=100_000))):
        assert b is not None
        quotas.check_budget(SETTINGS, "lab", b, SETTINGS.max_sample_volume)


def test_baseline_parameters_count_against_memory() -> None:
    """F' = D' = 1024 (the cap) on L = 128, d = 2: C(66, 2)·D'·F' ≈ 2.2·10⁹ parameters."""
    b = budget(TrainSpec(**THEORY, method="baseline", dim=2, L=128, batch=2, steps=1,
                         bond_freq=1024, bond_time=1024))
    assert b is not None and b.parameters > 2 * 10**9 and b.memory_field == "spec.bond_freq"
    with pytest.raises(quotas.QuotaExceeded, match="reduce bond_freq"):
        quotas.check_budget(SETTINGS, "lab", b, 2**62)

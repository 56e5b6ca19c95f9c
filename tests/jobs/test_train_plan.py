"""A train spec's plan (core.jobs.train_plan): the one place where open fields get the
named defaults of core.jobs.specs; what the physics library trains (TrainPlan)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from core.jobs.budgets import budget, flow_parameter_count
from core.jobs.specs import (
    BASELINE_LR,
    BASELINE_N_FREQ,
    COUPLING_LR,
    EVAL_SAMPLES,
    KINETIC_WEIGHT,
    LANGEVIN_THERM,
    LOWER_LR_FACTOR,
    LR,
    N_FREQ,
    STAGE_COUPLING_LR_FACTOR,
    STAGE_LR_FACTOR,
    TrainSpec,
    default_kernel_size,
)
from core.jobs.train_plan import train_plan
from core.physics.training.plan import TrainPlan

THEORY = {"dim": 2, "kappa": 0.25, "lam": 0.01}
DEFAULTS = {"lr": LR, "n_freq": N_FREQ, "kinetic_weight": KINETIC_WEIGHT,
            "coupling_lr": COUPLING_LR, "langevin_therm": LANGEVIN_THERM,
            "eval_samples": EVAL_SAMPLES, "lower_lr_factor": LOWER_LR_FACTOR,
            "stage_lr_factor": STAGE_LR_FACTOR,
            "stage_coupling_lr_factor": STAGE_COUPLING_LR_FACTOR}


def test_open_fields_take_the_named_defaults() -> None:
    spec = TrainSpec(L=16, coarse_L=4, **THEORY)
    plan = train_plan(spec)
    assert {k: getattr(plan, k) for k in DEFAULTS} == DEFAULTS
    assert (DEFAULTS["lr"], DEFAULTS["n_freq"]) == (0.01, 11)  # the paper's (Appendix C)
    assert plan.kernel_size == default_kernel_size(2, 4) == 5
    assert plan.levels == spec.levels == 2


def test_the_baseline_has_its_own_lr_and_F_and_no_local_kernel() -> None:
    plan = train_plan(TrainSpec(method="baseline", L=8, **THEORY))
    assert (plan.lr, plan.n_freq, plan.kernel_size) == (BASELINE_LR, BASELINE_N_FREQ, None)
    assert (BASELINE_LR, BASELINE_N_FREQ) == (5e-3, 30)  # the paper's comparison
    assert plan.levels == 0


def test_an_open_field_means_exactly_its_default() -> None:
    """None and the default written out give the same plan (and so the same run)."""
    spec = TrainSpec(L=16, coarse_L=4, **THEORY)
    explicit = TrainSpec(L=16, coarse_L=4, kernel_size=5, **THEORY, **DEFAULTS)
    assert train_plan(spec) == train_plan(explicit)
    assert budget(spec) == budget(explicit)
    assert flow_parameter_count(spec) == flow_parameter_count(explicit)


def test_given_values_are_kept_even_zero() -> None:
    given = {"lr": 0.02, "n_freq": 5, "kinetic_weight": 0.0, "coupling_lr": 2e-3,
             "langevin_therm": 0, "eval_samples": 64, "lower_lr_factor": 0.0,
             "stage_lr_factor": 0.5, "stage_coupling_lr_factor": 0.0}
    plan = train_plan(TrainSpec(L=16, coarse_L=4, **THEORY, **given))
    assert {k: getattr(plan, k) for k in given} == given


def test_the_kernel_is_the_specs_else_the_parents_else_the_default() -> None:
    open_k = TrainSpec(L=16, coarse_L=4, **THEORY)
    assert train_plan(open_k, parent_kernel_size=3).kernel_size == 3
    assert train_plan(open_k).kernel_size == 5
    assert train_plan(open_k.model_copy(update={"kernel_size": 7}), 3).kernel_size == 7
    baseline = TrainSpec(method="baseline", L=8, **THEORY)
    assert train_plan(baseline, parent_kernel_size=3).kernel_size is None


def test_the_plan_speaks_the_specs_names() -> None:
    """One name per quantity: every plan field is a TrainSpec field of the same meaning."""
    assert {f.name for f in fields(TrainPlan)} <= set(TrainSpec.model_fields)


@pytest.mark.parametrize("module", ["core.jobs.train_plan", "core.physics.training.plan",
                                    "core.physics.exact.coarse_samplers"])
def test_the_plan_and_the_spec_side_import_no_torch(module: str) -> None:
    code = f"import sys, {module}; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0

"""A train spec's plan: the one place where the open (None) fields of a
:class:`~core.jobs.specs.TrainSpec` get their values (no torch: the budgets use it too).

The values are the named defaults of core.jobs.specs; an open ``kernel_size`` is a
warm-start parent's (core.physics.training.warm.parent_kernel_size) before the default for
the coarse lattice. The physics library trains the resulting
:class:`~core.physics.training.plan.TrainPlan` and never sees a None-means-default.
"""

from __future__ import annotations

from core.jobs.specs import (
    COUPLING_LR,
    EVAL_SAMPLES,
    KINETIC_WEIGHT,
    LANGEVIN_THERM,
    LOWER_LR_FACTOR,
    STAGE_COUPLING_LR_FACTOR,
    STAGE_LR_FACTOR,
    TrainSpec,
    default_kernel_size,
    default_lr,
    default_n_freq,
)
from core.physics.training.plan import TrainPlan


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def plan_kernel_size(spec: TrainSpec, parent_kernel_size: int | None = None) -> int | None:
    """k of the spec's super-resolving levels: ``spec.kernel_size``, else the warm-start
    parent's, else :func:`~core.jobs.specs.default_kernel_size`; None for the baseline."""
    if spec.method == "baseline":
        return None
    if spec.kernel_size is not None:
        return spec.kernel_size
    if parent_kernel_size is not None:
        return parent_kernel_size
    return default_kernel_size(spec.dim, spec.coarse_L)


def train_plan(spec: TrainSpec, parent_kernel_size: int | None = None) -> TrainPlan:
    """The :class:`TrainPlan` of ``spec``: every open field filled with its default
    (core.jobs.specs), the kernel by :func:`plan_kernel_size` (``parent_kernel_size``: the
    warm-start parent's k, None without one)."""
    return TrainPlan(
        dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam, method=spec.method,
        coarse_L=spec.coarse_L, kernel_size=plan_kernel_size(spec, parent_kernel_size),
        n_freq=spec.n_freq if spec.n_freq is not None else default_n_freq(spec.method),
        n_time=spec.n_time, bond_freq=spec.bond_freq, bond_time=spec.bond_time,
        solver=spec.solver, solver_steps=spec.solver_steps, dtype=spec.dtype, field=spec.field,
        base=spec.base, learn_lam=spec.learn_lam, steps=spec.steps,
        max_minutes=spec.max_minutes, target_ess=spec.target_ess, batch=spec.batch,
        seed=spec.seed, device=spec.device,
        lr=_or(spec.lr, default_lr(spec.method)), lr_decay=spec.lr_decay,
        coupling_lr=_or(spec.coupling_lr, COUPLING_LR),
        kinetic_weight=_or(spec.kinetic_weight, KINETIC_WEIGHT),
        langevin_therm=spec.langevin_therm if spec.langevin_therm is not None
        else LANGEVIN_THERM,
        eval_samples=spec.eval_samples if spec.eval_samples is not None else EVAL_SAMPLES,
        grow=spec.grow, lower_lr_factor=_or(spec.lower_lr_factor, LOWER_LR_FACTOR),
        stage_lr_factor=_or(spec.stage_lr_factor, STAGE_LR_FACTOR),
        stage_coupling_lr_factor=_or(spec.stage_coupling_lr_factor, STAGE_COUPLING_LR_FACTOR),
        init_from=spec.init_from)


__all__ = ["plan_kernel_size", "train_plan"]

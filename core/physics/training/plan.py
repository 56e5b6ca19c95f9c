"""The fully resolved settings of one training run, and the flow they describe (no torch).

A :class:`TrainPlan` is what :func:`core.physics.training.api.train`,
:func:`core.physics.training.grow.train_grown` and the warm starts
(core.physics.training.warm) read. Every knob already holds its value: the library has no
"None means the default" for anything a user sets. The job layer builds a plan from a job
spec in one place (core.jobs.train_plan.train_plan), where the user-facing defaults live
beside the spec's fields (core.jobs.specs); a grown stack's stages are
``dataclasses.replace`` of the plan.

This module imports no torch (the budgets of core.jobs read plans in the API process);
:func:`flow_config` lives here so that both the training entry and the warm starts
import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.physics.flows.config import FlowConfig, TheoryConfig

Method = Literal["ir", "uv", "baseline"]
"""IR-matching (fixed fine couplings, learned coarse ones), UV-matching (fixed coarse
couplings, learned fine ones) or the full-lattice baseline (paper Sections V, VI)."""
Solver = Literal["rk4", "euler", "midpoint", "dopri5"]
"""ODE solver of the CNF (eq. 26); dopri5 is error-controlled."""
Dtype = Literal["float32", "float64"]
VectorField = Literal["paper", "hollow"]
"""The paper's vector field (eq. 23) or the hollow one (core.physics.flows.hollow_field)."""
NoiseBase = Literal["plain", "conditional"]
"""Block noise with a fixed width σ_θ (eqs. 19-21) or σ from the coarse field
(core.physics.flows.conditional_noise)."""


@dataclass(frozen=True)
class TrainPlan:
    """One training run, every setting resolved (names as core.jobs.specs.TrainSpec's).

    Theory: ``dim`` d, ``L`` the fine linear size, (``kappa``, ``lam``) of eq. (3) — the
    fixed fine couplings for ``ir`` and ``baseline``, the fixed coarse ones for ``uv`` —
    ``method``, ``coarse_L`` the coarse linear size (unused by the baseline).

    Flow: ``kernel_size`` k of the super-resolving levels (None for the baseline, whose
    kernel spans the lattice), ``n_freq`` F, ``n_time`` D, ``bond_freq`` F', ``bond_time``
    D' (eq. 25), ``solver`` with ``solver_steps``, ``dtype``, ``field``, ``base``;
    ``learn_lam`` lets λ learn beside κ.

    Optimisation: ``steps`` the step budget, ``max_minutes`` and ``target_ess`` further
    stops (None: none), ``batch``, ``seed``, ``device``, Adam's ``lr`` decaying by
    ``lr_decay`` per step, ``coupling_lr`` the learnable couplings' Adam lr,
    ``kinetic_weight`` λ_K of the kinetic-energy regulariser (Finlay et al. 2020),
    ``langevin_therm`` the IR source's Langevin thermalisation steps (eq. 37),
    ``eval_samples`` the fresh proposals of the final ESS/N (eq. 12).

    Growth (core.physics.training.grow): ``grow`` trains an ir/uv stack level by level;
    every stage after the first runs at lr·``stage_lr_factor`` and coupling
    lr·``stage_coupling_lr_factor``, its inherited levels at its lr·``lower_lr_factor``
    (0 freezes them). ``init_from`` names the warm-start parent the model records (None:
    none)."""

    dim: int
    L: int
    kappa: float
    lam: float
    method: Method
    coarse_L: int
    kernel_size: int | None
    n_freq: int
    n_time: int
    bond_freq: int
    bond_time: int
    solver: Solver
    solver_steps: int
    dtype: Dtype
    field: VectorField
    base: NoiseBase
    learn_lam: bool
    steps: int
    max_minutes: float | None
    target_ess: float | None
    batch: int
    seed: int
    device: str
    lr: float
    lr_decay: float
    coupling_lr: float
    kinetic_weight: float
    langevin_therm: int
    eval_samples: int
    grow: bool
    lower_lr_factor: float
    stage_lr_factor: float
    stage_coupling_lr_factor: float
    init_from: str | None

    @property
    def levels(self) -> int:
        """Factor-2 levels from coarse_L to L, log2(L/coarse_L) (eq. 38); 0 for the
        baseline."""
        return 0 if self.method == "baseline" else (self.L // self.coarse_L).bit_length() - 1


def flow_config(plan: TrainPlan, parent: str | None = None) -> FlowConfig:
    """The architecture record (``config.json``) of the flow ``plan`` trains; ``parent``
    (default ``plan.init_from``) is the warm-start parent it records."""
    baseline = plan.method == "baseline"
    return FlowConfig(
        kind="baseline" if baseline else "super_resolving", dim=plan.dim,
        coarse_L=None if baseline else plan.coarse_L, fine_L=plan.L, levels=plan.levels,
        kernel_size=None if baseline else plan.kernel_size,
        n_freq=plan.n_freq, n_time=plan.n_time,
        bond_freq=plan.bond_freq, bond_time=plan.bond_time,
        solver={"method": plan.solver, "steps": plan.solver_steps}, dtype=plan.dtype,
        field=plan.field, base=plan.base,
        theory=TheoryConfig(kappa=plan.kappa, lam=plan.lam), method=plan.method, seed=plan.seed,
        parent=parent if parent is not None else plan.init_from)


__all__ = ["Dtype", "Method", "NoiseBase", "Solver", "TrainPlan", "VectorField", "flow_config"]

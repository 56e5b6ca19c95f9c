"""Solver-gap monitor (DESIGN §4). IR 4×4 → 8×8, κ = 0.25, λ = 0.01, float32, batch 64,
Langevin 1000 thermalisation / 100 between steps. With D = 10 time modes and 2 fixed RK4
steps (no regulariser, lr 0.02) the optimiser opens the gap (measured: ~200 nats by step
10, with D^(I) falling far below its bound) and the monitor stops training with
SolverGapError; the default 8 RK4 steps at the default lr 0.01 keep it below 0.5 nats over
the same 20 steps (measured ≤ 0.05 over 300 steps). Note: 8 steps at lr 0.02 is *not* safe
(measured 34 nats at step 15), so the regulariser/solver choice matters."""

import pytest
import torch

from core.physics.flows.architecture import FieldConfig, LevelConfig
from core.physics.flows.gap import SolverGapError
from core.physics.flows.rg_flow import SuperResolvingFlow
from core.physics.flows.solver import SolverConfig
from core.physics.lattice.couplings import Couplings
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.ir import IRConfig, IRSource
from core.physics.training.logz import LogZConfig
from core.physics.training.problem import Matching
from core.physics.training.trainer import Trainer, TrainerConfig


def _trainer(solver_steps: int, lr: float, kernel: int = 2, kinetic: float = 0.0,
             refine_at: float | None = None, steps: int = 20) -> Trainer:
    gens = {k: torch.Generator().manual_seed(i)
            for i, k in enumerate(["flow", "langevin", "logz", "gap", "init"])}
    solver = SolverConfig(method="rk4", steps=solver_steps)
    level = LevelConfig(FieldConfig(2, kernel, n_time=10), solver)
    flow = SuperResolvingFlow.from_config(level, 4, 8, gens["init"]).float()
    coarse = LearnableCouplings(Couplings(0.25, 0.01))
    fine = LearnableCouplings(Couplings(0.25, 0.01), learn_kappa=False)
    src = IRSource(dim=2, coarse_L=4, batch=64, coarse=coarse, generator=gens["langevin"],
                   logz_generator=gens["logz"], dtype=torch.float32,
                   config=IRConfig(n_therm=1000, n_between=100,
                                   logz=LogZConfig(n_configs=600, chains=20, n_therm=50)))
    with torch.no_grad():
        flow.init_sigma(src.draw(), gens["init"])
    problem = Matching(flow, coarse, fine, src, gens["flow"], kinetic_weight=kinetic)
    return Trainer(problem, TrainerConfig(steps=steps, lr=lr, gap_every=5, gap_threshold=0.5,
                                          gap_refine_at=refine_at, checkpoint_every=0), gens)


@pytest.mark.slow
def test_gap_opening_configuration_is_caught() -> None:
    """With refinement off (``gap_refine_at=None``) the monitor stops the run."""
    trainer = _trainer(2, lr=0.02)
    with pytest.raises(SolverGapError, match="exceeds the threshold"):
        trainer.run()
    assert trainer.curve[-1].gap_log_q is not None and trainer.curve[-1].gap_log_q > 0.5


@pytest.mark.slow
def test_default_solver_keeps_gap_small() -> None:
    """The training defaults (core.physics.training.api): k = 3, RK4-8, λ_K = 0.05, lr 0.01.
    (Without the regulariser this k = 3 flow opens an 11.8-nat gap by step ~90; the full
    150-step run of tests/physics/training/test_ir_matching.py checks the whole curve.)"""
    curve = _trainer(8, lr=0.01, kernel=3, kinetic=0.05).run().curve
    gaps = [r.gap_log_q for r in curve if r.gap_log_q is not None]
    assert len(gaps) == 4 and max(gaps) < 0.5


def test_reference_solver_is_finer_for_fixed_and_adaptive_methods() -> None:
    """2× steps for RK4; 100× tighter tolerances for dopri5 (whose step count is no setting:
    comparing it with itself would always report a zero gap)."""
    from core.physics.flows.gap import reference_solver

    rk4 = SolverConfig(method="rk4", steps=8)
    assert reference_solver(rk4) == SolverConfig(method="rk4", steps=16)
    ref = reference_solver(SolverConfig(method="dopri5", steps=8, rtol=1e-5, atol=1e-7))
    assert ref.method == "dopri5" and ref.rtol == pytest.approx(1e-7)
    assert ref.atol == pytest.approx(1e-9)


@pytest.mark.slow
def test_growing_gap_refines_the_solver_instead_of_failing() -> None:
    """The same gap-opening configuration with the default refinement (0.1 nats): the
    monitor doubles RK4's steps, keeps the weights, and every gap it then records — measured
    against twice the *new* steps — is back under the threshold; the steps are in the curve."""
    trainer = _trainer(2, lr=0.02, refine_at=0.1)
    curve = trainer.run().curve
    from core.physics.flows.gap import solver_of
    steps = solver_of(trainer.problem.flow).steps
    refined = [r.extra["solver_steps"] for r in curve if "solver_steps" in r.extra]
    assert refined and refined[-1] == steps > 2
    assert refined == sorted(refined)
    gaps = [r.gap_log_q for r in curve if r.gap_log_q is not None]
    assert len(gaps) == 4 and max(gaps) < 0.5


def test_refined_solver_doubles_fixed_steps_up_to_the_cap() -> None:
    from core.physics.flows.gap import GapMeasure, refined_solver
    rk4 = SolverConfig(method="rk4", steps=8)
    big, small = GapMeasure(0.3, 0.1, 16), GapMeasure(0.05, 0.01, 16)
    assert refined_solver(rk4, big, 0.1, 64) == SolverConfig(method="rk4", steps=16)
    assert refined_solver(rk4, small, 0.1, 64) is None
    assert refined_solver(rk4, big, None, 64) is None
    assert refined_solver(SolverConfig(method="rk4", steps=64), big, 0.1, 64) is None
    assert refined_solver(SolverConfig(method="dopri5"), big, 0.1, 64) is None

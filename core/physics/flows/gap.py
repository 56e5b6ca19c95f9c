"""Solver honesty: the gap between the tracked log-density and the map the solver applies.

The flow's log q is the solver's integral of ∇·G (eq. 28); the sample is the solver's
discrete map. Reverse-KL training can exploit any difference (DESIGN §4). We measure it by
re-running the same proposals (same coarse fields, same noise) with a reference solver of
twice the steps (adaptive solvers: 100× tighter tolerances):

    gap_logq = max_i |log q_model(φ̃_i) − log q_ref(φ̃_i)|,   gap_phi = max_{i,x} |Δφ̃_{i,x}|

Both vanish as the model's solve converges; the training loop records them and raises
:class:`SolverGapError` when ``gap_logq`` passes a threshold (default 0.5 nats per
configuration: beyond that the reported ESS/N and acceptance are no longer the flow's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from core.physics.flows.solver import SolverConfig


class SolverGapError(RuntimeError):
    """The integrated divergence and the solver's map disagree beyond the threshold."""


@dataclass(frozen=True)
class GapMeasure:
    """max |Δ log q| (nats) and max |Δφ̃| between the model solver and the reference."""

    log_q: float
    phi: float
    reference_steps: int


def measure_gap(flow: Any, phi_coarse: Tensor, generator: torch.Generator,
                reference: SolverConfig | None = None) -> GapMeasure:
    """Push ``phi_coarse`` through ``flow`` twice with identical noise (the generator is
    cloned), once with the model's solver and once with ``reference`` (default: 2× steps).
    ``generator`` is advanced exactly as by one forward pass."""
    ref = reference if reference is not None else reference_solver(solver_of(flow))
    twin = _twin(generator)
    with torch.no_grad():
        a = flow.forward(phi_coarse, generator)
        b = flow.forward(phi_coarse, twin, solver=ref)
    return _compare(a.log_q_rel, b.log_q_rel, a.phi, b.phi, ref)


def measure_baseline_gap(flow: Any, n: int, generator: torch.Generator,
                         reference: SolverConfig | None = None) -> GapMeasure:
    """The same for a baseline flow: ``n`` identical prior draws (cloned generator) pushed
    with the model's solver and with ``reference`` (default: 2× steps)."""
    ref = reference if reference is not None else reference_solver(solver_of(flow))
    twin = _twin(generator)
    with torch.no_grad():
        a = flow(n, generator)
        b = flow(n, twin, solver=ref)
    return _compare(a.log_q, b.log_q, a.phi, b.phi, ref)


def _twin(generator: torch.Generator) -> torch.Generator:
    """A generator in the same state, so both solves see identical noise."""
    twin = torch.Generator(device=generator.device)
    twin.set_state(generator.get_state())
    return twin


def _compare(log_q: Tensor, log_q_ref: Tensor, phi: Tensor, phi_ref: Tensor,
             ref: SolverConfig) -> GapMeasure:
    dlq = (log_q.double() - log_q_ref.double()).abs()
    dphi = (phi.double() - phi_ref.double()).abs()
    return GapMeasure(log_q=_nanmax(dlq), phi=_nanmax(dphi), reference_steps=ref.steps)


def _nanmax(x: Tensor) -> float:
    """max, with any non-finite entry reported as +inf (a broken solve is an infinite gap)."""
    if not bool(torch.isfinite(x).all()):
        return float("inf")
    return float(x.max()) if x.numel() else 0.0


def solver_of(flow: Any) -> SolverConfig:
    """The model's solver: ``flow.solver``, the first level's CNF solver (super-resolving
    stacks) or the CNF's solver (baseline)."""
    solver = getattr(flow, "solver", None)
    if solver is None and hasattr(flow, "levels"):
        solver = flow.levels[0].cnf.solver
    if solver is None and hasattr(flow, "cnf"):
        solver = flow.cnf.solver
    if solver is None:
        raise TypeError(f"{type(flow).__name__} exposes no solver to compare against")
    return solver


def reference_solver(solver: SolverConfig) -> SolverConfig:
    """The solver the model's is checked against: twice the steps (fixed-step methods) or
    100× tighter rtol/atol (adaptive ones, whose step count is not a setting: comparing a
    dopri5 solve with itself would always report a zero gap)."""
    if solver.fixed_step:
        return solver.with_steps(2 * solver.steps)
    return solver.with_tolerances(solver.rtol / 100, solver.atol / 100)


def check_gap(gap: GapMeasure, threshold: float, step: int) -> None:
    """Raise :class:`SolverGapError` with an actionable message when the gap is too large."""
    if not gap.log_q <= threshold:
        raise SolverGapError(
            f"solver gap at step {step}: max |Δ log q| = {gap.log_q:.3g} nats "
            f"(max |Δφ| = {gap.phi:.3g}) between the model's solver and one with "
            f"{gap.reference_steps} steps exceeds the threshold {threshold:g}; the optimiser "
            f"is exploiting ODE-solver error. Use more solver steps, an adaptive solver "
            f"(dopri5), fewer time modes, a larger kinetic regulariser or a lower lr."
        )


def set_solver(flow: Any, solver: SolverConfig) -> None:
    """Give every CNF of ``flow`` the solver ``solver`` (stacks: each level's; baseline: its
    CNF's) — the counterpart of :func:`solver_of`."""
    if hasattr(flow, "levels"):
        for level in flow.levels:
            level.cnf.solver = solver
    elif hasattr(flow, "cnf"):
        flow.cnf.solver = solver
    if getattr(flow, "solver", None) is not None:
        flow.solver = solver


def refined_solver(solver: SolverConfig, gap: GapMeasure, refine_at: float | None,
                   max_steps: int) -> SolverConfig | None:
    """The solver to switch to when the gap has grown, or None to keep the current one.

    Fixed-step solvers double their steps once ``gap.log_q`` passes ``refine_at`` (RK4's
    error falls ~2⁴ = 16× per doubling), up to ``max_steps``; adaptive solvers and
    ``refine_at=None`` are never changed. Refining keeps the trained weights and keeps the
    reported log q honest: the gap that follows is measured against the new solver."""
    if refine_at is None or not gap.log_q > refine_at:
        return None
    if not solver.fixed_step or 2 * solver.steps > max_steps:
        return None
    return solver.with_steps(2 * solver.steps)

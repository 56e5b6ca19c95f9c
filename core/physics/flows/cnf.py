"""Continuous normalising flow F_θ by torchdiffeq, paper eqs. (26)-(28).

Forward (t0 → t1), with Ψ(t0) = Ψ:

    dΨ/dt = G(Ψ, t),   d ℓ/dt = ∇_Ψ·G(Ψ, t),   ℓ(t0) = 0,
    φ̃ = F(Ψ) = Ψ(t1),  log|det ∂F/∂Ψ| = ℓ(t1) = ∫_{t0}^{t1} ∇·G dt              (26)-(28)

so log p_F(φ̃) = log p_N(Ψ) − log_det. Inverse: the same ODE solved from t1 back to t0;
then ℓ(t0) = −∫_{t0}^{t1} ∇·G dt along the backward path = log|det ∂F⁻¹/∂φ|.

Optionally the kinetic energy E = ∫ Σ_x G_x² |dt| (Finlay et al. 2020) is integrated
alongside; training adds it as a regulariser that keeps trajectories straight and the
solver accurate.

The solver (method, steps, tolerances, adjoint, [t0, t1]) is a
:class:`core.physics.flows.solver.SolverConfig`, part of the model's config; a call may pass
another one (a finer reference, a refined step count).

Exactness caveat (DESIGN §4): ``log_det`` is the *solver's* integral of ∇·G, not the
log-det of the discrete map the solver applies; the two differ by the solver error,
which reverse-KL training can exploit. :func:`solver_gap` (model solver vs a finer one)
and :func:`bruteforce_log_det` (autograd Jacobian of the discrete map, tiny lattices)
measure it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from core.physics.flows.solver import SolverConfig
from core.physics.flows.vector_field import VectorField


@dataclass(frozen=True)
class CNFResult:
    """Output of a CNF solve: ``x`` (B, *lattice), ``log_det`` (B,), ``kinetic`` (B,) or None."""

    x: Tensor
    log_det: Tensor
    kinetic: Tensor | None = None


class _Dynamics(nn.Module):
    """Right-hand side of the augmented ODE (Ψ, ℓ[, E])."""

    def __init__(self, field: VectorField, kinetic: bool) -> None:
        super().__init__()
        self.field = field
        self.kinetic = kinetic

    def forward(self, t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        ev = self.field.state_velocity_and_divergence(t, state[0])
        if not self.kinetic:
            return ev.velocity, ev.divergence
        energy = ev.velocity.pow(2).reshape(ev.velocity.shape[0], -1).sum(dim=1)
        return ev.velocity, ev.divergence, energy


class CNF(nn.Module):
    """F_θ: Ψ ↦ φ̃ by integrating dΨ/dt = G (eq. 26) with exact log-det (eq. 28).

    ``solver`` None: :class:`SolverConfig`'s defaults (the library's, RK4 × 32); its interval
    must be the field's."""

    def __init__(self, field: VectorField, solver: SolverConfig | None = None) -> None:
        super().__init__()
        self.field = field
        self.solver = solver if solver is not None else SolverConfig()
        self._check_interval(self.solver)

    def _check_interval(self, solver: SolverConfig) -> None:
        if (solver.t0, solver.t1) != (self.field.t0, self.field.t1):
            raise ValueError(
                f"solver interval [{solver.t0}, {solver.t1}] differs from the field's time "
                f"kernel interval [{self.field.t0}, {self.field.t1}]"
            )

    def _solve(
        self, y: Tensor, start: float, end: float, solver: SolverConfig | None, kinetic: bool
    ) -> CNFResult:
        cfg = solver if solver is not None else self.solver
        self._check_interval(cfg)
        n = cfg.steps if cfg.fixed_step else 1
        t = torch.linspace(start, end, n + 1, dtype=y.dtype, device=y.device)
        zero = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        # Ψ in the field's state layout (a permutation of the sites: same divergence,
        # log-det and kinetic energy)
        y = self.field.to_state(y)
        state: tuple[Tensor, ...] = (y, zero, zero) if kinetic else (y, zero)
        func = _Dynamics(self.field, kinetic)
        kwargs: dict[str, Any] = dict(method=cfg.method)
        if not cfg.fixed_step:
            kwargs.update(rtol=cfg.rtol, atol=cfg.atol)
        if cfg.adjoint:
            params = tuple(p for p in self.field.parameters() if p.requires_grad)
            if not cfg.fixed_step:
                kwargs.update(adjoint_rtol=cfg.rtol, adjoint_atol=cfg.atol)
            out = odeint_adjoint(func, state, t, adjoint_params=params, **kwargs)
        else:
            out = odeint(func, state, t, **kwargs)
        sign = 1.0 if end > start else -1.0
        energy = sign * out[2][-1] if kinetic else None
        return CNFResult(x=self.field.from_state(out[0][-1]), log_det=out[1][-1],
                         kinetic=energy)

    def forward(
        self, psi: Tensor, solver: SolverConfig | None = None, kinetic: bool = False
    ) -> CNFResult:
        """φ̃ = F(Ψ) and log|det ∂F/∂Ψ| = ∫_{t0}^{t1} ∇·G dt per configuration."""
        cfg = solver if solver is not None else self.solver
        return self._solve(psi, cfg.t0, cfg.t1, cfg, kinetic)

    def inverse(
        self, phi: Tensor, solver: SolverConfig | None = None, kinetic: bool = False
    ) -> CNFResult:
        """Ψ = F⁻¹(φ) (solve t1 → t0) and log|det ∂F⁻¹/∂φ| = −∫ ∇·G dt on that path."""
        cfg = solver if solver is not None else self.solver
        return self._solve(phi, cfg.t1, cfg.t0, cfg, kinetic)


@dataclass(frozen=True)
class SolverGap:
    """Model solver vs a reference solver on the same inputs (ODE-consistency figure)."""

    max_abs_log_det: float
    max_abs_x: float
    reference: SolverConfig


def solver_gap(cnf: CNF, psi: Tensor, reference: SolverConfig | None = None) -> SolverGap:
    """max |Δ log_det| and max |Δx| between ``cnf.solver`` and ``reference`` (default 2× steps)."""
    ref = reference if reference is not None else cnf.solver.with_steps(2 * cnf.solver.steps)
    with torch.no_grad():
        a = cnf(psi)
        b = cnf(psi, solver=ref)
    return SolverGap(
        max_abs_log_det=float((a.log_det - b.log_det).abs().max()),
        max_abs_x=float((a.x - b.x).abs().max()),
        reference=ref,
    )


def bruteforce_log_det(cnf: CNF, psi: Tensor, solver: SolverConfig | None = None) -> Tensor:
    """log|det ∂x/∂Ψ| of the discrete solver map per configuration, by autograd (tiny lattices).

    Compare with ``cnf(psi, solver).log_det`` to measure the integrated-divergence gap.
    """
    batch, n = psi.shape[0], psi[0].numel()

    def fmap(v: Tensor) -> Tensor:
        return cnf(v.reshape(psi.shape), solver=solver).x.reshape(-1)

    jac = torch.autograd.functional.jacobian(fmap, psi.detach().reshape(-1), vectorize=True)
    jac = jac.reshape(batch, n, batch, n)
    blocks = torch.stack([jac[b, :, b, :] for b in range(batch)])
    return torch.linalg.slogdet(blocks).logabsdet

"""CNF of eqs. (26)-(28): log-det vs brute-force Jacobians, solver order, inverse, kinetic."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from core.physics.flows.architecture import FieldConfig
from core.physics.flows.cnf import CNF, bruteforce_log_det, solver_gap
from core.physics.flows.solver import SolverConfig
from core.physics.flows.vector_field import BaselineVectorField, LocalVectorField, VectorField

FINE = SolverConfig(method="dopri5", rtol=1e-10, atol=1e-10)

CASES = {
    "local_1d_L4_k2": (lambda: LocalVectorField(FieldConfig(1, 2)), (4,)),
    "local_1d_L8_k3": (lambda: LocalVectorField(FieldConfig(1, 3)), (8,)),
    "local_2d_L4_k2": (lambda: LocalVectorField(FieldConfig(2, 2)), (4, 4)),
    "local_2d_L4_k3": (lambda: LocalVectorField(FieldConfig(2, 3)), (4, 4)),
    "baseline_2d_L4": (lambda: BaselineVectorField(FieldConfig.paper_baseline(2), 4), (4, 4)),
    "baseline_1d_L6": (lambda: BaselineVectorField(FieldConfig.paper_baseline(1), 6), (6,)),
}


def make(name: str, scale: float = 0.2, batch: int = 2) -> tuple[CNF, torch.Tensor]:
    """A CNF with random non-zero W̃ ~ N(0, scale²), jittered ω, and a batch of fields."""
    build, shape = CASES[name]
    field: VectorField = build()
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        field.weight_space.normal_(0.0, scale, generator=gen)
        field.basis.omega.add_(0.2 * torch.randn(field.basis.omega.shape, generator=gen))
    return CNF(field), torch.randn(batch, *shape, generator=gen)


def orders(errors: list[float]) -> list[float]:
    return [math.log2(a / b) for a, b in itertools.pairwise(errors)]


@pytest.mark.parametrize("name", ["local_1d_L4_k2", "local_2d_L4_k2", "baseline_2d_L4"])
def test_identity_at_initialisation(name: str) -> None:
    cnf, psi = make(name, scale=0.0)
    out = cnf(psi, kinetic=True)
    assert torch.equal(out.x, psi) and not out.log_det.any() and not out.kinetic.any()
    back = cnf.inverse(psi)
    assert torch.equal(back.x, psi) and not back.log_det.any() and back.kinetic is None


@pytest.mark.slow  # 1-6 s each: dopri5 at 1e-10 resolves all D = 10 time modes
@pytest.mark.parametrize(
    "name", ["local_1d_L4_k2", "local_1d_L8_k3", "local_2d_L4_k2", "baseline_2d_L4"]
)
def test_log_det_equals_bruteforce_jacobian_fine_solver(name: str) -> None:
    """Measured |Δ| 3e-11 .. 2e-9 (dopri5, rtol = atol = 1e-10)."""
    cnf, psi = make(name)
    out = cnf(psi, solver=FINE)
    assert float((out.x - psi).detach().abs().max()) > 0.1  # a non-trivial map
    exact = bruteforce_log_det(cnf, psi, FINE)
    torch.testing.assert_close(out.log_det, exact, rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_rk4_log_det_gap_shrinks_at_fourth_order(name: str) -> None:
    """Tracked ∫∇·G vs log|det| of the discrete RK4 map: the gap the optimiser can exploit.

    Measured at 8/16/32 steps: orders 3.3-4.4 (8→16) and 4.7-5.0 (16→32); the gap at 32 steps
    is 8e-6 .. 3.3e-4. 4→8 is pre-asymptotic with D = 10 time modes (orders 1.0-3.2).
    """
    cnf, psi = make(name)
    gaps = []
    for steps in (8, 16, 32):
        solver = SolverConfig(steps=steps)
        tracked = cnf(psi, solver=solver).log_det
        gaps.append(float((tracked - bruteforce_log_det(cnf, psi, solver)).detach().abs().max()))
    assert gaps[-1] < 1e-3
    assert min(orders(gaps)) > 3.0, gaps


@pytest.mark.parametrize("name", ["local_1d_L8_k3", "local_2d_L4_k2", "local_2d_L4_k3"])
def test_inverse_round_trip(name: str) -> None:
    """Default RK4/32 with W̃ ~ N(0, 0.1²): measured |ΔΨ| 3.5e-7 .. 1.9e-6, |Δlog_det| ≤ 9.2e-6;
    both fall at order ≈ 4.8-5.0 from 16 to 64 steps."""
    cnf, psi = make(name, scale=0.1)
    default = cnf(psi)
    back = cnf.inverse(default.x)
    assert float((back.x - psi).detach().abs().max()) < 5e-6
    assert float((back.log_det + default.log_det).detach().abs().max()) < 3e-5
    dx, dl = [], []
    for steps in (16, 32, 64):
        solver = SolverConfig(steps=steps)
        fwd = cnf(psi, solver=solver)
        inv = cnf.inverse(fwd.x, solver=solver)
        dx.append(float((inv.x - psi).detach().abs().max()))
        dl.append(float((inv.log_det + fwd.log_det).detach().abs().max()))
    assert min(orders(dx)) > 3.0, dx
    assert min(orders(dl)) > 3.0, dl


def test_baseline_inverse_round_trip() -> None:
    """Measured 1.8e-5 (Ψ) and 6.7e-5 (log_det): F = 30 and six classes make G larger."""
    cnf, psi = make("baseline_2d_L4", scale=0.1)
    fwd = cnf(psi)
    back = cnf.inverse(fwd.x)
    assert float((back.x - psi).detach().abs().max()) < 5e-5
    assert float((back.log_det + fwd.log_det).detach().abs().max()) < 2e-4


def test_linear_field_log_det_and_kinetic_are_exact() -> None:
    """F = D = 1: G = AΨ with A constant, so log_det = tr A and E = Σ c_i² λ_i (e^{2λ_i} − 1)/2."""
    field = LocalVectorField(FieldConfig(1, 3, n_freq=1, n_time=1, bond_freq=1, bond_time=1))
    with torch.no_grad():
        field.weight_space.copy_(torch.tensor([0.3, -0.5, 0.2]).reshape(3, 1, 1))
    cnf = CNF(field, FINE)
    psi = torch.randn(3, 6, generator=torch.Generator().manual_seed(0))
    a = torch.autograd.functional.jacobian(lambda v: field(0.0, v[None])[0], torch.zeros(6))
    torch.testing.assert_close(a, a.T, rtol=0, atol=0)
    lam, q = torch.linalg.eigh(a)
    c2 = (psi @ q) ** 2
    energy = (c2 * lam * torch.expm1(2 * lam) / 2).sum(dim=1)
    out = cnf(psi, kinetic=True)
    torch.testing.assert_close(out.x, psi @ torch.linalg.matrix_exp(a).T, rtol=0, atol=1e-9)
    torch.testing.assert_close(out.log_det, torch.trace(a).expand(3), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.kinetic, energy, rtol=1e-9, atol=0)
    back = cnf.inverse(out.x, kinetic=True)
    torch.testing.assert_close(back.kinetic, energy, rtol=1e-8, atol=0)
    rk4 = cnf(psi, solver=SolverConfig(steps=3))  # ∇·G constant: any solver integrates it exactly
    torch.testing.assert_close(rk4.log_det, torch.trace(a).expand(3), rtol=0, atol=1e-12)


def test_adjoint_matches_direct_backpropagation() -> None:
    cnf, psi = make("local_2d_L4_k3", scale=0.2)
    grads = []
    for adjoint in (False, True):
        solver = SolverConfig(steps=16, adjoint=adjoint)
        cnf.zero_grad()
        out = cnf(psi, solver=solver, kinetic=True)
        loss = out.x.pow(2).sum() + out.log_det.sum() + 0.1 * out.kinetic.sum()
        loss.backward()
        grads.append(torch.cat([p.grad.reshape(-1) for p in cnf.parameters()]))
    assert grads[0].abs().max() > 1e-2
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-3 * float(grads[0].abs().max()))


def test_solver_interval_must_be_the_fields() -> None:
    with pytest.raises(ValueError, match="interval"):
        CNF(LocalVectorField(FieldConfig(1, 2)), SolverConfig(t1=2.0))
    field = LocalVectorField(FieldConfig(1, 2, t0=0.0, t1=2.0))
    cnf = CNF(field, SolverConfig(steps=4, t1=2.0))
    assert (field.t0, field.t1) == (cnf.solver.t0, cnf.solver.t1) == (0.0, 2.0)


def test_solver_gap_against_twice_the_steps() -> None:
    cnf, psi = make("local_2d_L4_k2")
    gap = solver_gap(cnf, psi)
    assert gap.reference.steps == 2 * cnf.solver.steps
    a, b = cnf(psi), cnf(psi, solver=cnf.solver.with_steps(64))
    assert gap.max_abs_log_det == pytest.approx(float((a.log_det - b.log_det).detach().abs().max()))
    assert 0 < gap.max_abs_log_det < 1e-4 and 0 < gap.max_abs_x < 1e-4

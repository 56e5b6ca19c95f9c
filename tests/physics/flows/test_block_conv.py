"""The block convolution is eq. (23)'s tap sum: the same linear map as the explicit
parity-dependent shifts, for every dimension and kernel size, with the same gradients."""

from __future__ import annotations

import pytest
import torch

from core.physics.flows.architecture import FieldConfig
from core.physics.flows.block_conv import block_conv, block_kernel_plan
from core.physics.flows.cnf import CNF, bruteforce_log_det
from core.physics.flows.solver import SolverConfig
from core.physics.flows.vector_field import LocalVectorField, local_offsets, roll_contract

CASES = [(1, 2, 8), (1, 3, 8), (1, 5, 8), (1, 7, 16), (2, 2, 4), (2, 3, 8), (2, 5, 8),
         (2, 7, 8), (2, 7, 16), (2, 9, 16), (3, 2, 4), (3, 3, 4), (3, 5, 8)]


def field_and_input(dim: int, k: int, L: int) -> tuple[LocalVectorField, torch.Tensor]:
    field = LocalVectorField(FieldConfig(dim, k, n_freq=4, n_time=3, bond_freq=3, bond_time=2),
                             torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        field.weight_space.normal_(0.0, 0.5, generator=gen)
    return field, torch.randn(2, *([L] * dim), generator=gen)


@pytest.mark.parametrize(("dim", "k", "L"), CASES)
def test_block_conv_equals_the_roll_reference(dim: int, k: int, L: int) -> None:
    field, psi = field_and_input(dim, k, L)
    coeff = field.coefficients(0.37)
    h = field.basis(psi)
    plan = block_kernel_plan(dim, k, dict(zip(field.offsets, field.offset_class, strict=True)))
    expected = roll_contract(torch.einsum("bf...,cf->bc...", h, coeff), field.offsets,
                             field.offset_class)
    torch.testing.assert_close(block_conv(h, coeff, plan), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("dim", "k"), [(1, 5), (2, 3), (2, 7), (3, 3)])
def test_every_tap_of_the_window_is_used_once(dim: int, k: int) -> None:
    """Per output parity the plan holds exactly the k^d (or 2^d) taps of the window."""
    offsets = local_offsets(dim, k)
    plan = block_kernel_plan(dim, k, {s: 0 for s in offsets})
    assert plan.mask.sum(dim=(1, 2)).tolist() == [len(offsets)] * 2**dim


def test_gradients_match_the_reference() -> None:
    """Training differentiates through the kernel gather: same gradients as the shifts."""
    field, psi = field_and_input(2, 7, 16)
    psi.requires_grad_(True)
    weight = torch.randn(psi.shape, generator=torch.Generator().manual_seed(3))

    def grads(contract: object) -> list[torch.Tensor]:
        field.zero_grad()
        psi.grad = None
        coeff, h = field.coefficients(0.6), field.basis(psi)
        out = contract(coeff, h)  # type: ignore[operator]
        (out * weight).sum().backward()
        return [psi.grad.clone(), field.weight_space.grad.clone(), field.basis.omega.grad.clone()]

    conv = grads(field._contract)
    rolls = grads(lambda c, h: roll_contract(torch.einsum("bf...,cf->bc...", h, c),
                                             field.offsets, field.offset_class))
    for a, b in zip(conv, rolls, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


def test_the_kernel_rejects_an_even_size_other_than_the_block() -> None:
    with pytest.raises(ValueError, match="kernel_size must be 2 or odd"):
        block_kernel_plan(2, 4, {})


def lattice_layout(field: LocalVectorField) -> LocalVectorField:
    """The same field made to integrate on the lattice layout (VectorField's state)."""
    field.to_state = lambda psi: psi  # type: ignore[method-assign]
    field.from_state = lambda state: state  # type: ignore[method-assign]
    field.state_velocity_and_divergence = field.velocity_and_divergence  # type: ignore
    return field


@pytest.mark.parametrize(("dim", "k", "L"), [(1, 5, 8), (2, 3, 8), (2, 7, 16), (3, 3, 4)])
def test_the_block_state_ode_is_the_lattice_ode(dim: int, k: int, L: int) -> None:
    """A CNF integrates its local field on the block layout: the same x, log-det and
    kinetic energy as on the lattice layout (a permutation of the coordinates)."""
    field, psi = field_and_input(dim, k, L)
    solver = SolverConfig(method="rk4", steps=6)
    blocks = CNF(field, solver)(psi, kinetic=True)
    sites = CNF(lattice_layout(field_and_input(dim, k, L)[0]), solver)(psi, kinetic=True)
    assert sites.kinetic is not None and blocks.kinetic is not None
    torch.testing.assert_close(blocks.x, sites.x, rtol=0, atol=1e-12)
    torch.testing.assert_close(blocks.log_det, sites.log_det, rtol=0, atol=1e-11)
    torch.testing.assert_close(blocks.kinetic, sites.kinetic, rtol=0, atol=1e-11)
    back = CNF(field, solver).inverse(blocks.x)
    back_sites = CNF(lattice_layout(field_and_input(dim, k, L)[0]), solver).inverse(blocks.x)
    torch.testing.assert_close(back.x, back_sites.x, rtol=0, atol=1e-12)
    torch.testing.assert_close(back.log_det, back_sites.log_det, rtol=0, atol=1e-11)


@pytest.mark.parametrize(("dim", "k", "L"), [(1, 5, 8), (2, 3, 4), (2, 5, 6)])
def test_block_state_log_det_equals_the_bruteforce_jacobian(dim: int, k: int, L: int) -> None:
    """float64: the log-det a block-layout CNF tracks is log|det ∂x/∂Ψ| of the map it
    applies, to 1e-10, with a fine adaptive solve (the solver gap is not under test)."""
    field, psi = field_and_input(dim, k, L)
    cnf = CNF(field, SolverConfig(method="dopri5", rtol=1e-12, atol=1e-12))
    psi = psi[:1]
    with torch.no_grad():
        tracked = cnf(psi).log_det
    brute = bruteforce_log_det(cnf, psi)
    assert float(tracked.abs().max()) > 0.5  # far from the identity
    torch.testing.assert_close(tracked, brute, rtol=0, atol=1e-10)

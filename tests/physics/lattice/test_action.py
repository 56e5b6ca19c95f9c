"""The action, its force and coupling derivatives against autograd and exact values."""

import pytest
import torch

from core.physics.lattice import Couplings, action, coupling_derivatives, force
from core.physics.lattice.couplings import CouplingError


@pytest.mark.parametrize("shape", [(3, 7), (3, 5, 6), (2, 3, 4, 5)])
def test_force_equals_autograd(shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    phi = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(action(phi, 0.23, 0.7).sum(), phi)
    assert torch.allclose(force(phi.detach(), 0.23, 0.7), grad, rtol=0, atol=1e-12)


def test_coupling_derivatives_equal_autograd() -> None:
    g = torch.Generator().manual_seed(2)
    phi = torch.randn(4, 6, 6, generator=g, dtype=torch.float64)
    kappa = torch.tensor(0.21, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(0.03, dtype=torch.float64, requires_grad=True)
    s = action(phi, kappa, lam)
    for i in range(phi.shape[0]):
        dk, dl = torch.autograd.grad(s[i], (kappa, lam), retain_graph=True)
        deriv = coupling_derivatives(phi)
        assert abs(dk.item() - deriv.dkappa[i].item()) < 1e-12 * max(1.0, abs(dk.item()))
        assert abs(dl.item() - deriv.dlam[i].item()) < 1e-12 * max(1.0, abs(dl.item()))


def test_action_of_constant_field_is_exact() -> None:
    # φ ≡ c on L^d sites: S = V[(1−2λ)c² + λc⁴ − 2κ d c²]
    for d in (1, 2, 3):
        phi = torch.full((1,) + (4,) * d, 0.7, dtype=torch.float64)
        V = 4**d
        expected = V * ((1 - 2 * 0.1) * 0.49 + 0.1 * 0.7**4 - 2 * 0.2 * d * 0.49)
        assert action(phi, 0.2, 0.1).item() == pytest.approx(expected, rel=1e-14)


def test_action_is_periodic_and_z2_symmetric() -> None:
    g = torch.Generator().manual_seed(3)
    phi = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    s = action(phi, 0.3, 0.02)
    assert torch.allclose(action(torch.roll(phi, (2, 3), (1, 2)), 0.3, 0.02), s, atol=1e-12)
    assert torch.allclose(action(-phi, 0.3, 0.02), s, atol=1e-12)


def test_couplings_validation_names_the_parameter() -> None:
    with pytest.raises(CouplingError, match="lam"):
        Couplings(0.1, -0.5).validate(2)
    with pytest.raises(CouplingError, match="kappa"):
        Couplings(0.26, 0.0).validate(2)
    assert Couplings(0.24, 0.0).validate(2).kappa == 0.24

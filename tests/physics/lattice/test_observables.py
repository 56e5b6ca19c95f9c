"""Observables against hand-computed values and the exact free-field (λ = 0) theory."""

import math

import numpy as np
import pytest
import torch

from core.physics.lattice.observables import (
    Estimate,
    abs_magnetization,
    action_density,
    connected_two_point,
    correlation_length_2nd,
    magnetization,
    measure,
    min_momentum_power,
    phi2_density,
    summarize,
    two_point,
)

KEYS = {
    "magnetization",
    "abs_magnetization",
    "phi2",
    "susceptibility",
    "susceptibility_connected",
    "binder",
    "action_density",
    "correlation_length",
}


def free_propagator(size: int, dim: int, kappa: float) -> torch.Tensor:
    """G̃(p) = 1/(2(1 − 2κ Σ_μ cos p_μ)) on the momentum grid, shape (L,)*dim."""
    p = 2 * math.pi * torch.arange(size, dtype=torch.float64) / size
    grids = torch.meshgrid(*([p] * dim), indexing="ij")
    return 1.0 / (2.0 * (1.0 - 2.0 * kappa * sum(torch.cos(g) for g in grids)))


def free_field(shape: tuple[int, ...], dim: int, kappa: float, seed: int) -> torch.Tensor:
    """Exact i.i.d. samples of the free theory: φ = F⁻¹ √G̃ F η with white noise η."""
    g = torch.Generator().manual_seed(seed)
    eta = torch.randn(shape, generator=g, dtype=torch.float64)
    axes = tuple(range(-dim, 0))
    amp = free_propagator(shape[-1], dim, kappa).sqrt()
    return torch.fft.ifftn(amp * torch.fft.fftn(eta, dim=axes), dim=axes).real


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_constant_field(dim: int) -> None:
    c, kappa, lam, size = -0.7, 0.13, 0.4, 4
    phi = torch.full((3, 2, *([size] * dim)), c)
    assert torch.allclose(magnetization(phi, dim), torch.full((3, 2), c))
    assert torch.allclose(abs_magnetization(phi, dim), torch.full((3, 2), -c))
    assert torch.allclose(phi2_density(phi, dim), torch.full((3, 2), c * c))
    s = (1 - 2 * lam) * c**2 + lam * c**4 - 2 * kappa * dim * c**2
    assert torch.allclose(action_density(phi, kappa, lam, dim), torch.full((3, 2), s))
    assert torch.allclose(two_point(phi, dim), torch.full_like(phi, c * c))
    assert torch.allclose(min_momentum_power(phi, dim), torch.zeros(3, 2), atol=1e-12)
    g_c = connected_two_point(phi, dim=dim)
    assert g_c.shape == (size,) * dim and np.allclose(g_c, 0.0, atol=1e-12)
    assert np.allclose(connected_two_point(phi, dim=dim, subtract="none"), c * c)
    est = summarize(phi, dim=dim, kappa=kappa, lam=lam)
    assert est["binder"].mean == pytest.approx(2 / 3) and est["binder"].error == 0.0
    assert est["action_density"].mean == pytest.approx(s)
    assert est["susceptibility_connected"].mean == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(est["correlation_length"].mean)  # F = 0: no finite ξ


@pytest.mark.parametrize("k", [1, 2])
def test_plane_wave(k: int) -> None:
    """φ_x = A cos(2πk x₀/L) + c: C(x) = c² + (A²/2) cos(2πk x₀/L), F = δ_{k1} A²V/(4d)."""
    size, amp, c = 8, 1.3, 0.4
    wave = amp * torch.cos(2 * math.pi * k * torch.arange(size) / size)
    phi = (wave[:, None] + c).expand(size, size).reshape(1, size, size)
    expected = c * c + 0.5 * amp**2 * torch.cos(2 * math.pi * k * torch.arange(size) / size)
    assert torch.allclose(two_point(phi, 2)[0], expected[:, None].expand(size, size))
    f = amp**2 * size**2 / 8 if k == 1 else 0.0
    assert min_momentum_power(phi, 2).item() == pytest.approx(f, abs=1e-12)
    # transposing the wave (other lattice axis) gives the same F
    assert min_momentum_power(phi.transpose(1, 2), 2).item() == pytest.approx(f, abs=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_second_moment_xi_of_exact_free_propagator(dim: int) -> None:
    """χ = G̃(0), F = G̃(2π e_μ/L) ⇒ ξ_2nd² = κ/(1 − 2dκ) exactly."""
    size, kappa = 8, 0.9 / (2 * dim) / 2
    g = free_propagator(size, dim, kappa)
    chi, f = g.flatten()[0].item(), g.flatten()[1].item()
    expected = math.sqrt(kappa / (1 - 2 * dim * kappa))
    assert correlation_length_2nd(chi, f, size) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_measured_action_density_equals_action(dim: int) -> None:
    g = torch.Generator().manual_seed(dim)
    for size in (2, 5):
        phi = torch.randn(3, 2, *([size] * dim), generator=g)
        meas = measure(phi, dim=dim, kappa=0.21, lam=0.3)
        exact = action_density(phi, 0.21, 0.3, dim).numpy()
        assert np.allclose(meas.action_density, exact, rtol=0, atol=1e-12)
        assert meas.magnetization.shape == (3, 2)


def test_summarize_keys_layouts_and_weights() -> None:
    phi = free_field((50, 4, 6, 6), 2, 0.1, seed=3)
    est = summarize(phi, dim=2, kappa=0.1, lam=0.0)
    assert set(est) == KEYS
    for e in est.values():
        assert isinstance(e, Estimate) and set(e.as_dict()) == {"mean", "error", "tau_int"}
        assert all(isinstance(v, float) for v in e.as_dict().values())
    one_chain = summarize(phi[:, 0].numpy().astype(np.float32), dim=2, kappa=0.1, lam=0.0)
    assert set(one_chain) == KEYS
    single = summarize(phi[:, :1], dim=2, kappa=0.1, lam=0.0)
    assert summarize(phi[:, 0], dim=2, kappa=0.1, lam=0.0) == single
    flat = phi.reshape(200, 6, 6)
    weighted = summarize(flat, dim=2, kappa=0.1, lam=0.0, log_weights=torch.full((200,), 3.0))
    for key in KEYS:
        assert weighted[key].mean == pytest.approx(est[key].mean, rel=1e-10)
        assert weighted[key].tau_int == 0.5
    with pytest.raises(ValueError):
        summarize(flat, dim=2, kappa=0.1, lam=0.0, log_weights=np.zeros(199))
    with pytest.raises(ValueError):
        summarize(phi, dim=1, kappa=0.1, lam=0.0)


def test_sum_rules_of_the_two_point_function() -> None:
    """Σ_x G(x) = V⟨M²⟩ = χ and Σ_x G_c(x) = χ_conn (|M| subtraction), identically."""
    phi = free_field((40, 3, 8, 8), 2, 0.2, seed=4)
    est = summarize(phi, dim=2, kappa=0.2, lam=0.0)
    assert connected_two_point(phi, dim=2, subtract="none").sum() == pytest.approx(
        est["susceptibility"].mean, rel=1e-10
    )
    assert connected_two_point(phi, dim=2).sum() == pytest.approx(
        est["susceptibility_connected"].mean, rel=1e-10
    )


@pytest.mark.slow
def test_free_field_observables_within_errors() -> None:
    """Exact i.i.d. free-field ensemble, d = 2, L = 8, κ = 0.2: χ = 1/(2(1−4κ)) = 2.5,
    ξ_2nd = √(κ/(1−4κ)) = 1, S/V = 1/2 (equipartition), ⟨φ²⟩ = (1/V) Σ_p G̃(p), ⟨M⟩ = 0."""
    size, kappa = 8, 0.2
    phi = free_field((1000, 4, size, size), 2, kappa, seed=5)
    est = summarize(phi, dim=2, kappa=kappa, lam=0.0)
    exact = {
        "magnetization": 0.0,
        "susceptibility": 2.5,
        "correlation_length": 1.0,
        "action_density": 0.5,
        "phi2": free_propagator(size, 2, kappa).mean().item(),
    }
    for key, value in exact.items():
        assert abs(est[key].mean - value) < 4 * est[key].error, key
        assert 0.3 < est[key].tau_int < 0.8, key  # i.i.d. samples: τ_int ≈ 1/2
    # reweight the κ = 0.2 ensemble to κ' = 0.19: log w = −S_κ' + S_κ = 2(κ'−κ) Σ φ_x φ_{x+μ}
    kp = 0.19
    hop = ((phi * phi.roll(1, -1)).sum((-2, -1)) + (phi * phi.roll(1, -2)).sum((-2, -1))).reshape(
        -1
    )
    rw = summarize(
        phi.reshape(-1, size, size), dim=2, kappa=kp, lam=0.0, log_weights=2 * (kp - kappa) * hop
    )
    chi = 1 / (2 * (1 - 4 * kp))
    assert abs(rw["susceptibility"].mean - chi) < 4 * rw["susceptibility"].error
    assert (
        abs(rw["correlation_length"].mean - math.sqrt(kp / (1 - 4 * kp)))
        < 4 * rw["correlation_length"].error
    )

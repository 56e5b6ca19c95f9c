"""d = 1 interacting theory: HMC against exact transfer-matrix values on the periodic chain.

T(φ, φ') = exp(−½V(φ) − ½V(φ') + 2κφφ'),  V(φ) = (1 − 2λ)φ² + λφ⁴ (eq. 3 at d = 1), so that
Z = ∫Πdφ Π_x T(φ_x, φ_{x+1}) = Tr T^L. On a trapezoid grid K_ij = √w_i T(φ_i, φ_j) √w_j and
⟨φ_0 φ_r⟩ = Tr(Φ K^r Φ K^{L−r}) / Tr K^L with Φ = diag(φ_i); χ = V⟨M²⟩ = Σ_r ⟨φ_0 φ_r⟩.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.stats import norm

from core.samplers import run_hmc
from tests.physics.measure import estimate, susceptibility, two_point_1d


@dataclass(frozen=True)
class Exact1D:
    G: np.ndarray  # ⟨φ_0 φ_r⟩ for r = 0..L/2
    chi: float


def transfer_matrix_exact(L: int, kappa: float, lam: float, n: int = 800,
                          cut: float = 6.0) -> Exact1D:
    phi = np.linspace(-cut, cut, n)
    w = np.full(n, phi[1] - phi[0])
    w[[0, -1]] *= 0.5
    v = (1 - 2 * lam) * phi**2 + lam * phi**4
    sw = np.sqrt(w) * np.exp(-0.5 * v)
    K = sw[:, None] * np.exp(2 * kappa * np.outer(phi, phi)) * sw[None, :]
    evals, U = np.linalg.eigh(K)
    evals = evals / evals.max()  # Tr K^L is scale-free in the ratios below
    A = U.T @ (phi[:, None] * U)  # Φ in the eigenbasis
    z = np.sum(evals**L)
    G = np.array([np.sum(A**2 * np.outer(evals**r, evals ** (L - r))) / z for r in range(L)])
    return Exact1D(G=G[: L // 2 + 1], chi=float(G.sum()))


def test_transfer_matrix_free_limit():
    """The quadrature reproduces the free propagator summed in position space."""
    L, kappa = 16, 0.3
    exact = transfer_matrix_exact(L, kappa, 0.0, n=400, cut=9.0)
    p = 2 * np.pi * np.arange(L) / L
    Gp = 1 / (2 * (1 - 2 * kappa * np.cos(p)))
    Gx = np.real(np.fft.ifft(Gp))[: L // 2 + 1]
    np.testing.assert_allclose(exact.G, Gx, rtol=1e-9)
    assert abs(exact.chi - 1 / (2 * (1 - 2 * kappa))) < 1e-9


@pytest.mark.slow
@pytest.mark.parametrize(("kappa", "lam"), [(0.1, 0.01), (0.4, 0.1), (0.5, 0.5)])
def test_hmc_matches_transfer_matrix(kappa: float, lam: float):
    L = 16
    exact = transfer_matrix_exact(L, kappa, lam)
    result = run_hmc(dim=1, L=L, kappa=kappa, lam=lam, n_samples=20000, chains=64,
                     generator=torch.Generator().manual_seed(5), n_therm=300)
    chi = estimate(susceptibility(result.configs)[..., None])
    G = estimate(two_point_1d(result.configs))  # G[0] is ⟨φ²⟩
    assert chi.z(exact.chi)[0] < 3.0, (chi.mean, chi.error, exact.chi)
    assert G.z(exact.G)[0] < 3.0, (G.mean[0], G.error[0], exact.G[0])
    z_max = norm.isf(0.01 / (2 * G.mean.size))  # Bonferroni over r, family-wise 1%
    assert G.z(exact.G).max() < z_max, (G.mean, G.error, exact.G)
    assert chi.error[0] < 0.03 * exact.chi

"""d = 1 interacting theory: HMC against exact transfer-matrix values on the periodic chain.

T(φ, φ') = exp(−½V(φ) − ½V(φ') + 2κφφ'),  V(φ) = (1 − 2λ)φ² + λφ⁴ (eq. 3 at d = 1), so that
Z = ∫Πdφ Π_x T(φ_x, φ_{x+1}) = Tr T^L. On a trapezoid grid K_ij = √w_i T(φ_i, φ_j) √w_j and
⟨φ_0 φ_r⟩ = Tr(Φ K^r Φ K^{L−r}) / Tr K^L with Φ = diag(φ_i); χ = V⟨M²⟩ = Σ_r ⟨φ_0 φ_r⟩.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from core.physics.mcmc import HmcParams, run_hmc
from tests.physics.mcmc.measure import estimate, susceptibility, two_point_1d
from tests.physics.mcmc.transfer_matrix import transfer_matrix_exact


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
    result = run_hmc(dim=1, L=L, kappa=kappa, lam=lam, generator=torch.Generator().manual_seed(5),
                     params=HmcParams(n_samples=20000, chains=64, n_therm=300))
    chi = estimate(susceptibility(result.configs)[..., None])
    G = estimate(two_point_1d(result.configs))  # G[0] is ⟨φ²⟩
    assert chi.z(exact.chi)[0] < 3.0, (chi.mean, chi.error, exact.chi)
    assert G.z(exact.G)[0] < 3.0, (G.mean[0], G.error[0], exact.G[0])
    z_max = norm.isf(0.01 / (2 * G.mean.size))  # Bonferroni over r, family-wise 1%
    assert G.z(exact.G).max() < z_max, (G.mean, G.error, exact.G)
    assert chi.error[0] < 0.03 * exact.chi

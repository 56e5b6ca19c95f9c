"""HMC against the exact free theory (λ = 0): χ = V⟨M²⟩ = 1/(2(1 − 2dκ)) and the momentum-space
propagator G(p) = V⟨|φ̃(p)|²⟩ = 1/(2(1 − 2κ Σ_μ cos p_μ)) at every lattice momentum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from core.physics.mcmc import HmcParams, run_hmc
from tests.physics.mcmc.measure import (
    estimate,
    free_propagator,
    momentum_propagator,
    susceptibility,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dim", "L", "kappa", "integrator"),
    [(1, 16, 0.2, "omelyan"), (2, 8, 0.2, "omelyan"), (2, 8, 0.15, "leapfrog")],
)
def test_free_susceptibility_and_propagator(dim: int, L: int, kappa: float, integrator: str):
    result = run_hmc(dim=dim, L=L, kappa=kappa, lam=0.0, generator=torch.Generator().manual_seed(7),
                     params=HmcParams(n_samples=20000, chains=64, n_therm=200,
                                      integrator=integrator))  # type: ignore[arg-type]
    chi = estimate(susceptibility(result.configs)[..., None])
    exact_chi = 1.0 / (2.0 * (1.0 - 2.0 * dim * kappa))
    assert chi.error[0] < 0.02 * exact_chi  # the check below has teeth
    assert chi.z(exact_chi)[0] < 3.0, (chi.mean, chi.error, exact_chi)

    G = estimate(momentum_propagator(result.configs))
    exact_G = free_propagator(dim, L, kappa)
    assert np.isclose(exact_G[0], exact_chi)  # G(p=0) is χ: the normalisation is consistent
    # max over all L^d momenta, Bonferroni-corrected for a family-wise 1% false alarm rate
    z_max = norm.isf(0.01 / (2 * exact_G.size))
    assert G.z(exact_G).max() < z_max, (G.z(exact_G).max(), z_max)

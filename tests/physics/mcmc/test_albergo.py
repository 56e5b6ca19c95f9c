"""d=2, L=8, κ=0.25, λ=0.5: Albergo et al. 2021 (tutorial, m² = −4, λ₀ = 8, φ_A = φ/2) give
χ = V⟨M²⟩ = 3.00 ± 0.04 in the convention of eq. (3)."""

from __future__ import annotations

import math

import pytest
import torch

from core.physics.mcmc import HmcParams, run_hmc
from tests.physics.mcmc.measure import estimate, susceptibility


@pytest.mark.slow
def test_albergo_susceptibility():
    result = run_hmc(dim=2, L=8, kappa=0.25, lam=0.5, generator=torch.Generator().manual_seed(11),
                     params=HmcParams(n_samples=24000, chains=64, n_therm=300))
    assert result.start == "ordered"  # 2dκ = 1 > 1 − 2λ = 0: mean-field double well
    chi = estimate(susceptibility(result.configs)[..., None])
    sigma = math.hypot(float(chi.error[0]), 0.04)
    assert chi.error[0] < 0.05
    assert abs(chi.mean[0] - 3.00) < 3 * sigma, (chi.mean, chi.error)

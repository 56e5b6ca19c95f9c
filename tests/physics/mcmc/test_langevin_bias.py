"""Langevin (eq. 37) is biased at finite τ; the bias must vanish as τ → 0.

For the free theory each momentum mode is an AR(1) process φ ← (1 − τa_p)φ + √(2τ)η with
a_p = 2(1 − 2κ Σ cos p) the eigenvalue of ∇²S, so its stationary variance is exactly
2τ/(1 − (1 − τa_p)²) = 1/(a_p(1 − τa_p/2)), against 1/a_p for e^{−S}. The measured ⟨φ²⟩
must match the finite-τ value and its bias over the exact ⟨φ²⟩ must shrink with τ.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.physics.mcmc import LangevinSampler
from core.physics.stats.gamma import gamma_method

L, KAPPA = 8, 0.2
A_P = 2 * (1 - 2 * KAPPA * np.cos(2 * np.pi * np.arange(L) / L))
EXACT = float(np.mean(1 / A_P))


def finite_tau_phi2(tau: float) -> float:
    return float(np.mean(1 / (A_P * (1 - tau * A_P / 2))))


@pytest.mark.slow
def test_langevin_bias_shrinks_with_tau():
    biases = []
    for k, tau in enumerate((0.1, 0.05, 0.025)):
        sampler = LangevinSampler(1, L, 1024, torch.Generator().manual_seed(k), tau=tau)
        relax = int(8 / (tau * A_P.min()))
        sampler.thermalise(KAPPA, 0.0, relax)
        series = []
        for _ in range(60):
            phi = sampler.step_many(KAPPA, 0.0, n_steps=relax // 8, differentiable=False)
            series.append((phi**2).mean(dim=1))
        est = gamma_method(torch.stack(series).numpy())
        expected = finite_tau_phi2(tau)
        assert abs(est.mean - expected) < 3 * est.error, (tau, est.mean, est.error, expected)
        assert est.error < 0.2 * (expected - EXACT)  # the bias is resolved
        biases.append(est.mean - EXACT)
    assert biases[0] > biases[1] > biases[2] > 0, biases

"""Chain-against-chain consistency: i.i.d. chains pass, a shifted (frozen) chain fails."""

import numpy as np
import torch

from core.chains import chain_consistency
from core.lattice.observables import measure
from core.samplers.hmc import run_hmc


def _ar1(rng: np.random.Generator, t: int, c: int, rho: float) -> np.ndarray:
    x = np.zeros((t, c))
    x[0] = rng.standard_normal(c)
    for i in range(1, t):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(c)
    return x


def test_consistent_chains_pass_and_a_shifted_chain_fails() -> None:
    rng = np.random.default_rng(11)
    x = _ar1(rng, 400, 16, 0.5)
    ok = chain_consistency(x)
    assert ok.consistent and 0.5 < ok.chi2_per_dof < 2.0
    x[:, 5] += 0.6  # one chain stuck elsewhere: ~5σ of its own mean error
    bad = chain_consistency(x)
    assert not bad.consistent and bad.worst_chain == 5


def test_false_alarm_rate_is_small() -> None:
    rng = np.random.default_rng(12)
    alarms = sum(not chain_consistency(_ar1(rng, 200, 8, 0.7)).consistent for _ in range(200))
    assert alarms <= 3  # α = 1e-3 twice (χ² and max z) over 200 trials


def test_broken_phase_hmc_with_ordered_start_is_consistent() -> None:
    # d = 2, L = 16, κ = 0.3, λ = 0.01: deep in the broken phase; ordered starts (auto)
    g = torch.Generator().manual_seed(4)
    res = run_hmc(dim=2, L=16, kappa=0.3, lam=0.01, n_samples=8 * 60, chains=8, generator=g,
                  n_therm=200, thin=2)
    assert res.start == "ordered"
    m = measure(res.configs, dim=2, kappa=0.3, lam=0.01)
    check = chain_consistency(np.abs(m.magnetization))
    assert check.consistent, check


def test_random_start_in_the_broken_phase_is_caught() -> None:
    # the same point from random fields: with this seed one chain freezes into a stripe
    # (⟨|M|⟩ ≈ 0.5 against ≈ 3.1 for the others) and the check must say so
    g = torch.Generator().manual_seed(4)
    res = run_hmc(dim=2, L=16, kappa=0.3, lam=0.01, n_samples=8 * 60, chains=8, generator=g,
                  n_therm=200, thin=2, start="random")
    m = measure(res.configs, dim=2, kappa=0.3, lam=0.01)
    check = chain_consistency(np.abs(m.magnetization))
    assert not check.consistent and check.worst_chain == 7

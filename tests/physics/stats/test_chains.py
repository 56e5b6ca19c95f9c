"""Chain-against-chain consistency: healthy chains pass at the stated false-alarm rate, a
shifted (frozen) chain fails, too-short chains get no verdict."""

import numpy as np
import pytest
import torch
from scipy import stats as sps

from core.physics.lattice.observables import measure
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.stats.chains import MIN_SAMPLES_PER_CHAIN, chain_consistency


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


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.05, 1e-3])
def test_false_alarm_rate_at_the_minimum_length_is_at_most_alpha(alpha: float) -> None:
    """1000 healthy ensembles of 8 AR(1) chains (ρ = 0.6, τ_int = 2) at exactly
    MIN_SAMPLES_PER_CHAIN samples each: the measured false-alarm rate is ≤ α (the bound
    is the one-sided binomial 99.9 % quantile at rate α)."""
    rng = np.random.default_rng(12)
    trials, t_len = 1000, MIN_SAMPLES_PER_CHAIN
    verdicts = [chain_consistency(_ar1(rng, t_len, 8, 0.6), alpha=alpha).consistent
                for _ in range(trials)]
    assert None not in verdicts
    alarms = sum(v is False for v in verdicts)
    assert alarms <= sps.binom.isf(1e-3, trials, alpha), alarms


def test_below_the_minimum_there_is_no_verdict() -> None:
    rng = np.random.default_rng(13)
    short = chain_consistency(_ar1(rng, MIN_SAMPLES_PER_CHAIN - 1, 16, 0.5))
    assert short.consistent is None and short.reason and str(MIN_SAMPLES_PER_CHAIN) in short.reason
    slow = chain_consistency(_ar1(rng, 150, 16, 0.97))  # τ_int ≈ 33: T < 10 τ_int
    assert slow.consistent is None and "τ_int" in (slow.reason or "")


def test_the_issue_case_gives_no_verdict() -> None:
    """hmc, L = 8, κ = 0.2, λ = 0.01, 200 samples in 16 chains (13 per chain) was
    reported χ²/dof = 1.8·10⁵ and inconsistent; now it gives no verdict, with the reason."""
    res = run_hmc(dim=2, L=8, kappa=0.2, lam=0.01, generator=torch.Generator().manual_seed(0),
                  params=HmcParams(n_samples=200, chains=16, n_therm=100))
    m = measure(res.configs, dim=2, kappa=0.2, lam=0.01)
    check = chain_consistency(np.abs(m.magnetization))
    assert res.configs.shape[0] == 13
    assert check.consistent is None and "13 samples per chain" in (check.reason or "")


@pytest.mark.slow
def test_healthy_hmc_runs_raise_few_alarms() -> None:
    """48 healthy 8-chain HMC ensembles (d = 2, L = 8, κ = 0.2, λ = 0.01, thinned by the
    pilot 2τ_int, 100 samples per chain): at α = 0.05 the number of alarms for ⟨|M|⟩ stays
    within the binomial 99.9 % bound (expected 2.4)."""
    groups, chains = 48, 8
    res = run_hmc(dim=2, L=8, kappa=0.2, lam=0.01, generator=torch.Generator().manual_seed(5),
                  params=HmcParams(n_samples=groups * chains * 100, chains=groups * chains,
                                   n_therm=200))
    am = np.abs(measure(res.configs, dim=2, kappa=0.2, lam=0.01).magnetization)
    verdicts = [chain_consistency(am[:, g * chains:(g + 1) * chains], alpha=0.05).consistent
                for g in range(groups)]
    assert None not in verdicts
    assert sum(v is False for v in verdicts) <= sps.binom.isf(1e-3, groups, 0.05)


def test_broken_phase_hmc_with_ordered_start_is_consistent() -> None:
    # d = 2, L = 16, κ = 0.3, λ = 0.01: deep in the broken phase; ordered starts (auto)
    g = torch.Generator().manual_seed(4)
    res = run_hmc(dim=2, L=16, kappa=0.3, lam=0.01, generator=g,
                  params=HmcParams(n_samples=8 * 100, chains=8, n_therm=200, thin=2))
    assert res.start == "ordered"
    m = measure(res.configs, dim=2, kappa=0.3, lam=0.01)
    check = chain_consistency(np.abs(m.magnetization))
    assert check.consistent, check


def test_random_start_in_the_broken_phase_is_caught() -> None:
    # the same point from random fields: with this seed one chain freezes into a stripe
    # (⟨|M|⟩ ≈ 0.5 against ≈ 3.1 for the others) and the check must say so
    g = torch.Generator().manual_seed(4)
    res = run_hmc(dim=2, L=16, kappa=0.3, lam=0.01, generator=g,
                  params=HmcParams(n_samples=8 * 100, chains=8, n_therm=200, thin=2,
                                   start="random"))
    m = measure(res.configs, dim=2, kappa=0.3, lam=0.01)
    check = chain_consistency(np.abs(m.magnetization))
    assert not check.consistent and check.worst_chain == 7

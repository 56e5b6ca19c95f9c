"""Γ-method, ESS/N and reweighting against exact AR(1) and importance-sampling results."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from core.physics.stats.gamma import (
    calibrate,
    ess_fraction,
    gamma_method,
    gamma_method_derived,
    jackknife,
    reweighted_derived,
    reweighted_mean,
)


def ar1(rho: float, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Stationary AR(1) x_t = ρ x_{t−1} + √(1−ρ²) ε_t with unit variance, along axis 0."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn(shape, generator=g, dtype=torch.float64).numpy()
    x0 = torch.randn(shape[1:], generator=g, dtype=torch.float64).numpy()
    zi = (rho * x0)[None] if eps.ndim > 1 else np.array([rho * x0])
    return lfilter([math.sqrt(1 - rho**2)], [1.0, -rho], eps, axis=0, zi=zi)[0]


def exact_tau(rho: float) -> float:
    return (1 + rho) / (2 * (1 - rho))


def exact_error(rho: float, t_len: int, n_chains: int = 1) -> float:
    """√Var of the mean of n_chains independent unit-variance AR(1) chains of length T."""
    t = np.arange(1, t_len)
    var = (1 + 2 * np.sum((1 - t / t_len) * rho**t)) / t_len
    return math.sqrt(var / n_chains)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_tau_int_and_error_of_ar1(rho: float) -> None:
    t_len = 100_000
    res = gamma_method(ar1(rho, (t_len,), seed=11 + int(10 * rho)))
    assert res.n == t_len
    assert abs(res.tau_int - exact_tau(rho)) < 3 * res.tau_int_error
    assert abs(res.error - exact_error(rho, t_len)) < 3 * res.error_of_error
    assert abs(res.mean) < 4 * res.error
    assert 0 < res.window < t_len // 2


def test_replicas_combine_short_chains() -> None:
    rho, t_len, n_chains = 0.9, 5_000, 8
    x = ar1(rho, (t_len, n_chains), seed=5)
    res = gamma_method(x)
    assert res.n == t_len * n_chains
    assert res.mean == pytest.approx(x.mean(), abs=1e-15)
    assert abs(res.tau_int - exact_tau(rho)) < 3 * res.tau_int_error
    assert abs(res.error - exact_error(rho, t_len, n_chains)) < 3 * res.error_of_error
    # a single chain of the same data has a larger error than the combined estimate
    assert gamma_method(x[:, 0]).error > 2 * res.error


def test_torch_input_and_constant_series() -> None:
    x = ar1(0.5, (2_000,), seed=3)
    assert gamma_method(torch.from_numpy(x)) == gamma_method(x)
    const = gamma_method(np.full(100, 2.5))
    assert const.mean == 2.5 and const.error == 0.0 and const.tau_int == 0.5
    with pytest.raises(ValueError):
        gamma_method(np.zeros((2, 3, 4)))


def binder(m2: float, m4: float) -> float:
    return 1 - m4 / (3 * m2**2)


@pytest.mark.slow
def test_derived_error_matches_spread_of_replications() -> None:
    """200 independent AR(1) experiments: the quoted error ≈ std of the estimates (±20%)."""
    n_rep, t_len, rho = 200, 2_000, 0.6
    x = ar1(rho, (t_len, n_rep), seed=17) + 0.3
    values, errors, taus = [], [], []
    for r in range(n_rep):
        res = gamma_method_derived(binder, [x[:, r] ** 2, x[:, r] ** 4])
        values.append(res.mean)
        errors.append(res.error)
        taus.append(res.tau_int)
    spread = np.std(values, ddof=1)
    assert np.mean(errors) == pytest.approx(spread, rel=0.2)
    # x² and x⁴ of an AR(1) decorrelate faster than x itself: τ_int < (1+ρ)/(2(1−ρ))
    assert 0.5 < np.mean(taus) < exact_tau(rho)


def test_derived_of_linear_function_equals_primary() -> None:
    x = ar1(0.7, (4_000, 2), seed=8)
    y = ar1(0.2, (4_000, 2), seed=9)
    lin = gamma_method_derived(lambda a, b: 2 * a - 3 * b, [x, y])
    direct = gamma_method(2 * x - 3 * y)
    assert lin.mean == pytest.approx(direct.mean, abs=1e-12)
    assert lin.error == pytest.approx(direct.error, rel=1e-6)
    assert lin.window == direct.window


def test_jackknife_agrees_with_gamma_method_for_iid_data() -> None:
    x = ar1(0.0, (20_000,), seed=21) + 1.0
    jk = jackknife(binder, [x**2, x**4], n_bins=50)
    gm = gamma_method_derived(binder, [x**2, x**4])
    assert jk.mean == pytest.approx(gm.mean, abs=1e-12)
    assert jk.error == pytest.approx(gm.error, rel=0.25)


def test_ess_fraction_exact_cases() -> None:
    n = 1000
    assert ess_fraction(np.zeros(n)) == pytest.approx(1.0, abs=1e-14)
    assert ess_fraction(np.full(n, 1e4)) == pytest.approx(1.0, abs=1e-14)  # no overflow
    one_hot = np.full(n, -np.inf)
    one_hot[17] = 3.0
    assert ess_fraction(one_hot) == pytest.approx(1.0 / n, rel=1e-14)
    # two weights a, b: (a+b)²/(2(a²+b²))
    assert ess_fraction(torch.tensor([0.0, math.log(3.0)])) == pytest.approx(16 / 20, rel=1e-14)
    with pytest.raises(ValueError):
        ess_fraction(np.array([0.0, np.nan]))


def test_reweighted_mean_with_equal_weights_is_plain_mean() -> None:
    x = ar1(0.0, (500,), seed=4)
    res = reweighted_mean(x, np.full(500, -7.0))
    assert res.mean == pytest.approx(x.mean(), abs=1e-14)
    assert res.error == pytest.approx(x.std(ddof=1) / math.sqrt(500), rel=1e-12)
    assert res.ess_fraction == pytest.approx(1.0, abs=1e-14)


@pytest.mark.slow
def test_reweighted_errors_match_spread() -> None:
    """Proposals q = N(0,1), target p = N(0.5,1): log w = x/2 − 1/8; ⟨x⟩_p = 0.5, ⟨x²⟩_p = 1.25."""
    g = torch.Generator().manual_seed(31)
    x = torch.randn(300, 1_000, generator=g, dtype=torch.float64).numpy()
    log_w = 0.5 * x - 0.125
    means = [reweighted_mean(x[r], log_w[r]) for r in range(300)]
    var = [
        reweighted_derived(lambda a, b: b - a * a, [x[r], x[r] ** 2], log_w[r]) for r in range(300)
    ]
    for ests, exact in ((means, 0.5), (var, 1.0)):
        values = np.array([e.mean for e in ests])
        errors = np.array([e.error for e in ests])
        assert errors.mean() == pytest.approx(values.std(ddof=1), rel=0.2)
        assert abs(values.mean() - exact) < 4 * values.std(ddof=1) / math.sqrt(300)
    assert means[0].ess_fraction == pytest.approx(math.exp(-0.25), rel=0.1)


def test_single_replica_error_agrees_with_pyerrors() -> None:
    """Same data, same S = 1.5: Wolff's window, τ_int(W) ≥ ½ and the bias-corrected error
    (eq. 49) as pyerrors, to rounding."""
    import pyerrors as pe

    for rho, seed in ((0.0, 1), (0.0, 2), (0.5, 1), (0.9, 3)):
        x = ar1(rho, (20000,), seed)
        ours = gamma_method(x)
        ref = pe.Obs([x], ["ens|r0"])
        ref.gamma_method(S=1.5)
        assert ours.window == ref.e_windowsize["ens"]
        assert math.isclose(ours.error, ref.dvalue, rel_tol=1e-9)
        assert math.isclose(ours.tau_int, ref.e_tauint["ens"], rel_tol=2e-3)


def test_replicas_around_the_global_mean_stay_calibrated_where_pyerrors_is_low() -> None:
    """64 short replicas (T = 100 ≈ 10 τ_int) of AR(1), ρ = 0.9: our error matches the exact
    one (mean over 8 data sets within ±10 %, each ratio uncertain by ≈ 8 %); pyerrors, which
    centres each replica on its own mean, comes out ≈ 0.65 of it on the same data."""
    import pyerrors as pe

    ex = exact_error(0.9, 100, 64)
    ours, theirs = [], []
    for seed in range(8):
        x = ar1(0.9, (100, 64), 100 + seed)
        ours.append(gamma_method(x).error / ex)
        ref = pe.Obs([x[:, c] for c in range(64)], [f"ens|r{c}" for c in range(64)])
        ref.gamma_method(S=1.5)
        theirs.append(ref.dvalue / ex)
    assert abs(np.mean(ours) - 1.0) < 0.1, ours
    assert np.mean(theirs) < 0.8, theirs


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["hmc", "cluster"])
def test_errors_are_calibrated_over_replicated_runs(algorithm: str) -> None:
    """Error bars that hold: 96 independent runs (4 chains × 800 sweeps each, every sweep
    kept, T ≈ 60 τ_int) at d = 2, L = 8, κ = 0.25, λ = 0.01; for ⟨|M|⟩, χ and S/V the
    scatter of the run means over the mean quoted Γ-method error lies in 1 ± 0.2. With 96
    runs the ratio is uncertain by ≈ 0.073, so the band is ≈ 2.7σ: decisive both ways."""
    from core.physics.lattice.observables import Measurements, measure, summarize_measurements
    from core.physics.mcmc.cluster import ClusterParams, run_cluster
    from core.physics.mcmc.hmc import HmcParams, run_hmc

    runs, per_run, t_len, kappa, lam = 96, 4, 800, 0.25, 0.01
    g, n, chains = torch.Generator().manual_seed(21), runs * per_run * t_len, runs * per_run
    if algorithm == "hmc":
        res = run_hmc(dim=2, L=8, kappa=kappa, lam=lam, generator=g,
                      params=HmcParams(n_samples=n, chains=chains, thin=1, n_therm=300))
    else:
        res = run_cluster(dim=2, L=8, kappa=kappa, lam=lam, generator=g,
                          params=ClusterParams(n_samples=n, chains=chains, thin=1, n_therm=300))
    m = measure(res.configs, dim=2, kappa=kappa, lam=lam)
    estimates = []
    for r in range(runs):
        cols = slice(r * per_run, (r + 1) * per_run)
        estimates.append(summarize_measurements(Measurements(
            m.magnetization[:, cols], m.phi2[:, cols], m.action_density[:, cols],
            m.min_momentum_power[:, cols], m.volume, m.size)))
    for name in ("abs_magnetization", "susceptibility", "action_density"):
        cal = calibrate([e[name].mean for e in estimates], [e[name].error for e in estimates])
        assert abs(cal.ratio - 1.0) < 0.2, (name, cal)
        assert cal.ratio_error < 0.08

"""bench/cost_fit.py: log-log power-law fits and crossovers of the cost study."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.cost_fit import crossover, fit_power_law

SIZES = [8.0, 16.0, 32.0, 64.0]


def test_exact_power_law_is_recovered_exactly() -> None:
    fit = fit_power_law(SIZES, [3.0 * L**1.7 for L in SIZES], [0.1] * 4)
    assert fit.a == pytest.approx(1.7, abs=1e-12)
    assert fit.value(256.0) == pytest.approx(3.0 * 256**1.7, rel=1e-10)
    # two points: the error is the propagated one, exactly √2·0.1/log 2 for L and 2L
    two = fit_power_law([8.0, 16.0], [1.0, 2.0**1.7], [0.1, 0.1])
    assert two.a_error == pytest.approx(math.sqrt(2) * 0.1 / math.log(2), rel=1e-10)


def test_noisy_exponent_within_its_error_and_error_honest() -> None:
    """400 data sets with 10 % log-normal noise: the pull (a − 1.5)/δa has mean ≈ 0 and
    spread ≈ 1 (the Birge scaling only ever widens δa, so the spread is ≤ 1 up to noise)."""
    rng = np.random.default_rng(11)
    pulls = []
    for _ in range(400):
        y = [2.0 * L**1.5 * math.exp(0.1 * rng.standard_normal()) for L in SIZES]
        fit = fit_power_law(SIZES, y, [0.1] * 4)
        pulls.append((fit.a - 1.5) / fit.a_error)
    p = np.asarray(pulls)
    assert abs(p.mean()) < 0.15
    assert 0.6 < p.std() < 1.1
    assert (np.abs(p) < 3).mean() > 0.97


def test_underestimated_errors_are_widened() -> None:
    rng = np.random.default_rng(3)
    y = [2.0 * L**1.5 * math.exp(0.3 * rng.standard_normal()) for L in SIZES]
    tight = fit_power_law(SIZES, y, [0.01] * 4)
    x = np.log(SIZES)
    unscaled = 0.01 / math.sqrt(((x - x.mean()) ** 2).sum())
    assert tight.chi2_dof > 10
    assert tight.a_error == pytest.approx(unscaled * math.sqrt(tight.chi2_dof), rel=1e-9)


def test_crossover_of_known_power_laws() -> None:
    """2 L² and 50 L cross at L = 25; below it the steeper one is cheaper."""
    steep = fit_power_law(SIZES, [2 * L**2 for L in SIZES], [0.05] * 4)
    flat = fit_power_law(SIZES, [50 * L for L in SIZES], [0.05] * 4)
    c = crossover(steep, flat, ("HMC", "cluster"))
    assert c is not None
    assert c.L == pytest.approx(25.0, rel=1e-9)
    assert (c.cheaper_below, c.cheaper_above) == ("HMC", "cluster")
    assert 0 < c.L_error < 25.0
    swapped = crossover(flat, steep, ("cluster", "HMC"))
    assert swapped is not None and swapped.L == pytest.approx(25.0, rel=1e-9)
    assert swapped.cheaper_above == "cluster"


@pytest.mark.parametrize("pre", [0.1, 1e6])
def test_no_crossover_outside_range_or_parallel(pre: float) -> None:
    # 2 L² against pre·L cross at L = pre/2: 0.05 (below 8) or 5·10⁵ (above 256)
    steep = fit_power_law(SIZES, [2 * L**2 for L in SIZES], [0.05] * 4)
    other = fit_power_law(SIZES, [pre * L for L in SIZES], [0.05] * 4)
    assert crossover(steep, other, ("a", "b")) is None
    parallel = fit_power_law(SIZES, [5 * L**2 for L in SIZES], [0.05] * 4)
    assert crossover(steep, parallel, ("a", "b")) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        fit_power_law([8.0], [1.0], [0.1])
    with pytest.raises(ValueError):
        fit_power_law([8.0, 16.0], [1.0, -1.0], [0.1, 0.1])

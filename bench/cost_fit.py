"""Power-law fits and crossovers for the cost study (bench/cost_study.py).

A quantity y(L) ∝ L^a (τ_int ∝ L^z, cost ∝ L^a) is fitted as a straight line in log-log,

    log y_i = b + a·log L_i,   weights 1/σ_i² with σ_i = δy_i/y_i (relative errors),

by weighted least squares; cov(a, b) = (XᵀWX)⁻¹, scaled by χ²/dof when that exceeds 1
(the Birge ratio: scatter beyond the quoted errors widens the exponent's error rather than
being ignored). Two fitted curves y₁ = e^{b₁}L^{a₁}, y₂ = e^{b₂}L^{a₂} cross at

    log L* = (b₂ − b₁)/(a₁ − a₂),
    δ(log L*)² = [Σ_k (var b_k + 2 log L*·cov(a_k, b_k) + log²L*·var a_k)]/(a₁ − a₂)²,

the two fits being independent. A crossover is reported only inside [lo, hi] (the CPU study
asks for L ≤ 256); outside it, or for parallel curves, the order of the two methods does
not change in that range and :func:`crossover` returns None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLaw:
    """y = exp(b)·L^a; ``cov`` = [[var a, cov ab], [cov ab, var b]]; ``chi2_dof`` of the fit
    (NaN with two points)."""

    a: float
    b: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    chi2_dof: float
    n: int

    @property
    def a_error(self) -> float:
        return math.sqrt(self.cov[0][0])

    def value(self, L: float) -> float:
        return math.exp(self.b + self.a * math.log(L))

    def rel_error(self, L: float) -> float:
        """δy/y of the fitted curve at L (from cov(a, b))."""
        x = math.log(L)
        (vaa, vab), (_, vbb) = self.cov
        return math.sqrt(max(vbb + 2 * x * vab + x * x * vaa, 0.0))


@dataclass(frozen=True)
class Crossover:
    """The two curves cross at L ± L_error; ``cheaper_above`` is cheaper for L > L*."""

    L: float
    L_error: float
    cheaper_below: str
    cheaper_above: str


def fit_power_law(sizes: Sequence[float], values: Sequence[float],
                  rel_errors: Sequence[float]) -> PowerLaw:
    """Weighted least squares of log y = b + a log L (needs ≥ 2 sizes, y > 0, δy > 0)."""
    L, y, s = (np.asarray(v, dtype=np.float64) for v in (sizes, values, rel_errors))
    if L.size < 2 or len({*L.tolist()}) < 2:
        raise ValueError(f"need at least two distinct sizes, got {L.tolist()}")
    if (y <= 0).any() or not (s > 0).all() or not np.isfinite(s).all():
        raise ValueError("values must be > 0 and relative errors finite and > 0")
    X = np.stack([np.log(L), np.ones_like(L)], axis=1)
    w = 1.0 / s**2
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    a, b = cov @ (X.T @ (w * np.log(y)))
    dof = L.size - 2
    chi2_dof = float((w * (np.log(y) - X @ np.array([a, b])) ** 2).sum() / dof) if dof else math.nan
    if dof and chi2_dof > 1.0:
        cov = cov * chi2_dof
    return PowerLaw(a=float(a), b=float(b), chi2_dof=chi2_dof, n=int(L.size),
                    cov=((float(cov[0, 0]), float(cov[0, 1])),
                         (float(cov[1, 0]), float(cov[1, 1]))))


def crossover(first: PowerLaw, second: PowerLaw, names: tuple[str, str],
              lo: float = 8.0, hi: float = 256.0) -> Crossover | None:
    """Where ``first`` and ``second`` cross inside [lo, hi]; None if they do not."""
    da = first.a - second.a
    if abs(da) < 1e-12:
        return None
    x = (second.b - first.b) / da
    if not math.log(lo) <= x <= math.log(hi):
        return None
    var = sum(f.cov[1][1] + 2 * x * f.cov[0][1] + x * x * f.cov[0][0] for f in (first, second))
    L = math.exp(x)
    steeper, flatter = (names[0], names[1]) if da > 0 else (names[1], names[0])
    return Crossover(L=L, L_error=L * math.sqrt(max(var, 0.0)) / abs(da),
                     cheaper_below=steeper, cheaper_above=flatter)

"""Exact partition functions of the lattice φ⁴ action where they are known in closed form.

With S(φ) = Σ_x [(1−2λ)φ_x² + λφ_x⁴ − 2κ Σ_μ φ_x φ_{x+μ}] (paper eq. 3) and Z = ∫Π_x dφ_x e^{−S}:

- κ = 0 (decoupled sites): the action factorises,

      log Z(0, λ) = V · log z₁(λ),   z₁(λ) = ∫ dφ e^{−(1−2λ)φ² − λφ⁴}          (DESIGN §10)

  by adaptive quadrature (scipy.integrate.quad; z₁(0) = √π exactly).
- λ = 0 (free field): S = φᵀAφ with A = 1 − κ Σ_μ (T_μ + T_μ⁻¹), eigenvalues
  1 − 2κ Σ_μ cos p_μ on the periodic momenta p_μ = 2πn_μ/L, so

      log Z = (V/2) log π − ½ Σ_p log(1 − 2κ Σ_μ cos p_μ),

  finite for |κ| < 1/(2d) (DESIGN §10).

These anchor thermodynamic integration (core.physics.mcmc.thermodynamic) and the exact
checks of the flow's log Z (core.physics.stats.free_energy).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate


def log_z_site(lam: float) -> float:
    """log ∫ dφ e^{−(1−2λ)φ² − λφ⁴} for λ ≥ 0 (the one-site integral at κ = 0)."""
    if lam < 0:
        raise ValueError(f"lam={lam}: λ must be ≥ 0 for a normalisable action")
    if lam == 0.0:
        return 0.5 * math.log(math.pi)
    # the integrand peaks at φ² = max(0, (2λ − 1)/(2λ)); e^{−V_min} is taken out
    phi2 = max(0.0, (2 * lam - 1) / (2 * lam))
    v_min = (1 - 2 * lam) * phi2 + lam * phi2 * phi2

    def integrand(x: float) -> float:
        x2 = x * x
        return math.exp(-((1 - 2 * lam) * x2 + lam * x2 * x2 - v_min))

    peak = math.sqrt(phi2)
    pieces = [integrate.quad(integrand, 0.0, peak, epsabs=0, epsrel=1e-13, limit=200)[0]
              if peak > 0 else 0.0,
              integrate.quad(integrand, peak, math.inf, epsabs=0, epsrel=1e-13, limit=200)[0]]
    return math.log(2.0 * sum(pieces)) - v_min


def log_z_decoupled(dim: int, L: int, lam: float) -> float:
    """log Z(κ = 0, λ) = L^d · log z₁(λ)."""
    return L**dim * log_z_site(lam)


def free_eigenvalues(dim: int, L: int, kappa: float) -> np.ndarray:
    """1 − 2κ Σ_μ cos p_μ on the L^d periodic momenta (the quadratic form A's spectrum)."""
    cos = np.cos(2 * np.pi * np.arange(L) / L)
    total = np.zeros((L,) * dim)
    for mu in range(dim):
        shape = [1] * dim
        shape[mu] = L
        total = total + cos.reshape(shape)
    return 1.0 - 2.0 * kappa * total


def log_z_free(dim: int, L: int, kappa: float) -> float:
    """log Z of the free field (λ = 0): (V/2) log π − ½ Σ_p log(1 − 2κ Σ_μ cos p_μ)."""
    ev = free_eigenvalues(dim, L, kappa)
    if not np.all(ev > 0):
        raise ValueError(f"kappa={kappa}: the free field in d={dim} needs |κ| < 1/(2d) "
                         f"= {1 / (2 * dim):g}")
    return 0.5 * L**dim * math.log(math.pi) - 0.5 * float(np.log(ev).sum())


def dlog_z_free_dkappa(dim: int, L: int, kappa: float) -> float:
    """d log Z/dκ of the free field = Σ_p Σ_μ cos p_μ / (1 − 2κ Σ_μ cos p_μ)."""
    cos_sum = (1.0 - free_eigenvalues(dim, L, 1.0)) / 2.0
    return float((cos_sum / (1.0 - 2.0 * kappa * cos_sum)).sum())

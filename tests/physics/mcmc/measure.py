"""Per-configuration observables and Γ-method errors for the physics tests.

Configurations come time-major, ``(T, C, L, ..., L)``; every series below is ``(T, C)`` (or
``(T, C, k)`` for k observables at once) and is analysed with
core.physics.stats.gamma.gamma_method, which combines the C independent chains and accounts
for autocorrelation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.physics.stats.gamma import gamma_method


@dataclass(frozen=True)
class Estimates:
    """Means and errors of k observables, each a float64 array of shape (k,)."""

    mean: np.ndarray
    error: np.ndarray

    def z(self, exact: np.ndarray | float) -> np.ndarray:
        return np.abs(self.mean - np.asarray(exact)) / self.error


def estimate(series: Tensor) -> Estimates:
    """Γ-method for each trailing component of a ``(T, C, ...)`` series."""
    x = series.detach().double().cpu().reshape(series.shape[0], series.shape[1], -1).numpy()
    results = [gamma_method(x[:, :, k]) for k in range(x.shape[2])]
    return Estimates(np.array([r.mean for r in results]), np.array([r.error for r in results]))


def lattice_axes(configs: Tensor) -> tuple[int, ...]:
    return tuple(range(2, configs.ndim))


def susceptibility(configs: Tensor) -> Tensor:
    """χ = V M² per configuration, M = mean φ."""
    volume = configs[0, 0].numel()
    return volume * configs.mean(dim=lattice_axes(configs)) ** 2


def momentum_propagator(configs: Tensor) -> Tensor:
    """G(p) = V |φ̃(p)|² with φ̃(p) = V⁻¹ Σ_x e^{−ipx} φ_x, i.e. |FFT φ|²/V; shape (T, C, L^d)."""
    axes = lattice_axes(configs)
    volume = configs[0, 0].numel()
    phit = torch.fft.fftn(configs, dim=axes)
    return (phit.abs() ** 2 / volume).reshape(configs.shape[0], configs.shape[1], -1)


def free_propagator(dim: int, L: int, kappa: float) -> np.ndarray:
    """1/(2(1 − 2κ Σ_μ cos p_μ)) on the FFT momentum grid p_μ = 2πn_μ/L, flattened."""
    p = 2 * np.pi * np.fft.fftfreq(L, d=1.0 / L) / L
    grids = np.meshgrid(*([p] * dim), indexing="ij")
    cos_sum = sum(np.cos(g) for g in grids)
    return (1.0 / (2.0 * (1.0 - 2.0 * kappa * cos_sum))).reshape(-1)


def two_point_1d(configs: Tensor) -> Tensor:
    """G(r) = L⁻¹ Σ_x φ_x φ_{x+r} per configuration for r = 0..L/2, shape (T, C, L/2+1)."""
    L = configs.shape[-1]
    return torch.stack(
        [(configs * torch.roll(configs, -r, dims=-1)).mean(dim=-1) for r in range(L // 2 + 1)],
        dim=-1,
    )

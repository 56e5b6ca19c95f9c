"""Exact partition functions (core.physics.lattice.partition) against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from core.physics.lattice.partition import (
    dlog_z_free_dkappa,
    log_z_decoupled,
    log_z_free,
    log_z_site,
)
from tests.physics.mcmc.transfer_matrix import transfer_matrix_log_z


@pytest.mark.parametrize("lam", [0.0, 0.01, 0.3, 0.5, 0.9, 2.0, 20.0])
def test_one_site_integral_matches_direct_quadrature(lam: float) -> None:
    direct = integrate.quad(lambda x: math.exp(-(1 - 2 * lam) * x * x - lam * x**4),
                            -np.inf, np.inf, epsabs=0, epsrel=1e-12)[0]
    assert log_z_site(lam) == pytest.approx(math.log(direct), abs=1e-10)
    assert log_z_decoupled(2, 4, lam) == pytest.approx(16 * log_z_site(lam), rel=1e-14)


def _hopping_matrix(dim: int, L: int) -> np.ndarray:
    """Σ_{x,μ} (δ_{y,x+μ} + δ_{y,x−μ}) on the periodic lattice, as eq. (3) counts links."""
    n = L**dim
    h = np.zeros((n, n))
    for x in range(n):
        coords = np.unravel_index(x, (L,) * dim)
        for mu in range(dim):
            nxt = list(coords)
            nxt[mu] = (nxt[mu] + 1) % L
            y = int(np.ravel_multi_index(nxt, (L,) * dim))
            h[x, y] += 1
            h[y, x] += 1
    return h


@pytest.mark.parametrize(("dim", "L", "kappa"), [(1, 8, 0.3), (2, 4, 0.2), (2, 2, 0.1),
                                                 (2, 6, -0.15), (3, 2, 0.1)])
def test_free_field_matches_the_gaussian_determinant(dim: int, L: int, kappa: float) -> None:
    """Z = ∫ e^{−φᵀAφ} = π^{V/2} det(A)^{−1/2}, A = 1 − κ H."""
    a = np.eye(L**dim) - kappa * _hopping_matrix(dim, L)
    sign, logdet = np.linalg.slogdet(a)
    assert sign > 0
    assert log_z_free(dim, L, kappa) == pytest.approx(0.5 * L**dim * math.log(math.pi)
                                                      - 0.5 * logdet, abs=1e-10)


def test_free_field_derivative_and_limits() -> None:
    h = 1e-6
    fd = (log_z_free(2, 8, 0.2 + h) - log_z_free(2, 8, 0.2 - h)) / (2 * h)
    assert dlog_z_free_dkappa(2, 8, 0.2) == pytest.approx(fd, rel=1e-7)
    assert log_z_free(2, 8, 0.0) == pytest.approx(log_z_decoupled(2, 8, 0.0), abs=1e-12)
    with pytest.raises(ValueError, match="1/\\(2d\\)"):
        log_z_free(2, 8, 0.25)


@pytest.mark.slow
def test_transfer_matrix_z_matches_the_closed_forms() -> None:
    """Tr K^L with the grid's trapezoid weights is Z itself (not only ratios)."""
    assert transfer_matrix_log_z(16, 0.3, 0.0, n=400, cut=9.0) == pytest.approx(
        log_z_free(1, 16, 0.3), abs=1e-9)
    assert transfer_matrix_log_z(16, 0.0, 0.5) == pytest.approx(log_z_decoupled(1, 16, 0.5),
                                                                abs=1e-9)

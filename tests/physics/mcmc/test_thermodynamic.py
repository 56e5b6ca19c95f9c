"""Thermodynamic integration in κ (core.physics.mcmc.thermodynamic) against exact log Z:
the free field (core.physics.lattice.partition) and the d = 1 transfer matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.physics.lattice.partition import log_z_free
from core.physics.mcmc.thermodynamic import TiParams, gauss_legendre, integrate_kappa
from tests.physics.mcmc.transfer_matrix import transfer_matrix_log_z


@pytest.mark.parametrize("kappa", [0.3, -0.2])
def test_gauss_legendre_is_exact_for_polynomials_of_degree_2n_minus_1(kappa: float) -> None:
    x, w = gauss_legendre(kappa, 4)
    for k in range(8):
        assert float(np.sum(w * x**k)) == pytest.approx(kappa ** (k + 1) / (k + 1), abs=1e-15)
    with pytest.raises(ValueError, match="at least one node"):
        gauss_legendre(kappa, 0)


FREE = [(1, 8, 0.4, "hmc", 400), (2, 4, 0.2, "cluster", 150), (2, 8, 0.2, "hmc", 400)]


@pytest.mark.slow
@pytest.mark.parametrize(("dim", "L", "kappa", "algorithm", "samples"), FREE,
                         ids=[f"d{d}-L{L}-{a}" for d, L, _, a, _ in FREE])
def test_free_field_log_z_within_three_sigma(dim: int, L: int, kappa: float,
                                            algorithm: str, samples: int) -> None:
    """8 and 16 Gauss–Legendre nodes, ``samples`` configurations × 32 chains per node."""
    ti = integrate_kappa(dim=dim, L=L, kappa=kappa, lam=0.0,
                         params=TiParams(samples=samples,
                                         algorithm=algorithm),  # type: ignore[arg-type]
                         generator=torch.Generator().manual_seed(7))
    exact = log_z_free(dim, L, kappa)
    assert abs(ti.log_z - exact) < 3 * ti.error, (ti.log_z, ti.error, exact)
    assert ti.quadrature_converged is True and ti.quadrature_error < 5 * ti.error
    assert len(ti.rules) == 2 and [len(r.nodes) for r in ti.rules] == [8, 16]
    assert 0 < ti.error < 0.05 and ti.cpu_seconds > 0


@pytest.mark.slow
def test_interacting_chain_against_the_transfer_matrix() -> None:
    """d = 1, L = 8, κ = 0.3, λ = 0.5: log Z(0, λ) by quadrature, the rest by TI."""
    ti = integrate_kappa(dim=1, L=8, kappa=0.3, lam=0.5, params=TiParams(samples=400),
                         generator=torch.Generator().manual_seed(8))
    exact = transfer_matrix_log_z(8, 0.3, 0.5)
    assert abs(ti.log_z - exact) < 3 * ti.error, (ti.log_z, ti.error, exact)
    unchecked = integrate_kappa(dim=1, L=8, kappa=0.3, lam=0.5,
                                params=TiParams(samples=100, nodes=4, check=False),
                                generator=torch.Generator().manual_seed(9))
    assert unchecked.quadrature_converged is None and math.isnan(unchecked.quadrature_error)
    assert len(unchecked.rules) == 1


def test_cluster_needs_an_even_lattice() -> None:
    with pytest.raises(ValueError, match="even L"):
        integrate_kappa(dim=1, L=7, kappa=0.1, lam=0.0, params=TiParams(algorithm="cluster"),
                        generator=torch.Generator().manual_seed(0))

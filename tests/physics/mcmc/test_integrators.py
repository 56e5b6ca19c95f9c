"""Integrators: reversibility, ΔH ∝ ε² at fixed trajectory length, Omelyan's smaller constant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.physics.lattice.action import force
from core.physics.mcmc import HMCSampler, hamiltonian, leapfrog, omelyan

KAPPA, LAM = 0.25, 0.5


def _equilibrium(dim: int = 2, L: int = 8, chains: int = 64) -> torch.Tensor:
    sampler = HMCSampler(dim=dim, L=L, chains=chains, generator=torch.Generator().manual_seed(0),
                         kappa=KAPPA, lam=LAM)
    sampler.thermalise(60)
    return sampler.phi


def _force(phi: torch.Tensor) -> torch.Tensor:
    return force(phi, KAPPA, LAM)


@pytest.mark.parametrize("integrator", [leapfrog, omelyan])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_reversible(integrator, dim: int):
    g = torch.Generator().manual_seed(dim)
    shape = (4,) + (6,) * dim
    phi, pi = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    fwd = integrator(phi, pi, _force, 0.1, 25)
    assert (fwd.phi - phi).abs().max() > 0.1  # it moved
    back = integrator(fwd.phi, -fwd.pi, _force, 0.1, 25)
    assert (back.phi - phi).abs().max() < 1e-10
    assert (back.pi + pi).abs().max() < 1e-10


def test_integrators_do_not_modify_inputs():
    phi, pi = torch.ones(2, 4, 4), torch.ones(2, 4, 4)
    for integrator in (leapfrog, omelyan):
        integrator(phi, pi, _force, 0.1, 3)
    assert torch.equal(phi, torch.ones(2, 4, 4)) and torch.equal(pi, torch.ones(2, 4, 4))


def _rms_dH(integrator, phi: torch.Tensor, pi: torch.Tensor, n_steps: int) -> float:
    out = integrator(phi, pi, _force, 1.0 / n_steps, n_steps)
    dH = hamiltonian(out.phi, out.pi, KAPPA, LAM) - hamiltonian(phi, pi, KAPPA, LAM)
    return float(dH.pow(2).mean().sqrt())


def test_dH_scales_as_eps_squared():
    phi = _equilibrium()
    pi = torch.randn(phi.shape, generator=torch.Generator().manual_seed(1))
    steps = np.array([8, 16, 32, 64])
    eps = 1.0 / steps
    rms = {name: np.array([_rms_dH(f, phi, pi, int(n)) for n in steps])
           for name, f in (("leapfrog", leapfrog), ("omelyan", omelyan))}
    for name, values in rms.items():
        slope, _ = np.polyfit(np.log(eps), np.log(values), 1)
        assert abs(slope - 2.0) < 0.15, (name, slope, values)
    assert np.all(rms["omelyan"] < 0.2 * rms["leapfrog"]), rms

"""Cluster algorithm (Wolff flips + checkerboard Metropolis) against exact results:
detailed balance of the flips on a tiny lattice, the free field, the d = 1 transfer
matrix, and HMC in the broken phase."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as sps

from core.physics.lattice.action import action
from core.physics.mcmc import HmcParams, run_hmc
from core.physics.mcmc.cluster import (
    ClusterParams,
    ClusterSampler,
    bond_probabilities,
    run_cluster,
    wolff_flip,
)
from tests.physics.mcmc.measure import (
    estimate,
    free_propagator,
    momentum_propagator,
    susceptibility,
    two_point_1d,
)
from tests.physics.mcmc.transfer_matrix import transfer_matrix_exact


def test_flips_keep_magnitudes_and_never_cross_a_disfavoured_link() -> None:
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(64, 6, 6, generator=g)
    before = phi.clone()
    sizes = wolff_flip(phi, 0.3, g)
    assert torch.equal(phi.abs(), before.abs())
    flipped = phi != before
    assert torch.equal(flipped.reshape(64, -1).sum(1), sizes) and bool((sizes >= 1).all())
    phi = torch.randn(32, 8, generator=g)
    phi = phi.sign() * (0.5 + phi.abs())  # 4κ|φ_x φ_y| ≥ 50: p = 1 on every aligned link
    signs = phi.sign()
    wolff_flip(phi, 50.0, g)  # so the cluster is a whole sign domain
    changed = phi.sign() != signs
    for c in range(32):
        idx = torch.nonzero(changed[c]).reshape(-1)
        domain_sign = signs[c, idx[0]]
        assert bool((signs[c, idx] == domain_sign).all())
        for x in idx.tolist():  # aligned neighbours of a flipped site were flipped too
            for y in ((x + 1) % 8, (x - 1) % 8):
                if signs[c, y] == domain_sign:
                    assert bool(changed[c, y])


def test_bond_probability_matches_the_embedded_ising_coupling() -> None:
    # J = 2κ|φ_x||φ_y| from eq. (3); p = 1 − e^{−2J} for aligned signs, 0 otherwise
    phi = torch.tensor([[0.7, -1.3, -0.4, 2.0]])
    p = bond_probabilities(phi, 0.2)[0][0]
    right = torch.roll(phi, -1, dims=1)[0]
    expected = torch.where(phi[0] * right > 0, 1 - torch.exp(-2 * 2 * 0.2 * (phi[0] * right)),
                           torch.zeros(()))
    torch.testing.assert_close(p, expected)


@pytest.mark.parametrize("kappa", [0.3, -0.3])
def test_flips_satisfy_detailed_balance_at_fixed_magnitudes(kappa: float) -> None:
    """d = 2, L = 2 (4 sites, 8 links): the sign chain of Wolff flips at fixed |φ| has the
    Ising Boltzmann weight e^{−S} as stationary law and symmetric equilibrium flows
    π(ε)K(ε→ε') = π(ε')K(ε'→ε), tested on 20 000 chains × 30 flips; κ < 0 bonds
    anti-aligned neighbours."""
    g = torch.Generator().manual_seed(1)
    mags = torch.tensor([[0.9, 1.4], [0.6, 1.1]])
    lam, chains, steps = 0.1, 20000, 30
    states = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=4))).reshape(16, 2, 2)
    weights = torch.exp(-action(states * mags, kappa, lam))
    pi = (weights / weights.sum()).numpy()
    codes = torch.tensor([8, 4, 2, 1])

    def code(phi: torch.Tensor) -> torch.Tensor:
        return ((phi.reshape(-1, 4) > 0).long() * codes).sum(1)

    start = torch.multinomial(torch.as_tensor(pi), chains, replacement=True, generator=g)
    phi = states[start] * mags
    flow = np.zeros((16, 16))
    for _ in range(steps):
        a = code(phi)
        wolff_flip(phi, kappa, g)
        np.add.at(flow, (a.numpy(), code(phi).numpy()), 1)
    visits = flow.sum(axis=1)
    chi2 = float((((visits - visits.sum() * pi) ** 2) / (visits.sum() * pi)).sum())
    assert sps.chi2.sf(chi2, 15) > 1e-3, chi2  # stationary law (correlated draws: conservative)
    i, j = np.triu_indices(16, 1)
    n = flow[i, j] + flow[j, i]
    keep = n > 0
    z = (flow[i, j] - flow[j, i])[keep] / np.sqrt(n[keep])
    assert np.abs(z).max() < sps.norm.isf(1e-3 / (2 * keep.sum())), np.abs(z).max()
    assert flow[i, j].sum() > 1000  # the flips do move


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_runs_in_every_dimension_and_reproduces(dim: int) -> None:
    def go() -> torch.Tensor:
        return run_cluster(dim=dim, L=4, kappa=0.1, lam=0.1,
                           generator=torch.Generator().manual_seed(3),
                           params=ClusterParams(n_samples=8, chains=4, thin=2, n_therm=5)).configs

    a = go()
    assert a.shape == (2, 4) + (4,) * dim
    assert torch.equal(a, go())


def test_odd_L_is_refused() -> None:
    with pytest.raises(ValueError, match="even L"):
        ClusterSampler(dim=2, L=5, chains=2, generator=torch.Generator(), kappa=0.1, lam=0.1)


@pytest.mark.slow
def test_free_field_susceptibility_and_propagator() -> None:
    dim, L, kappa = 2, 8, 0.2
    res = run_cluster(dim=dim, L=L, kappa=kappa, lam=0.0,
                      generator=torch.Generator().manual_seed(7),
                      params=ClusterParams(n_samples=12000, chains=32, thin=2, n_therm=200))
    chi = estimate(susceptibility(res.configs)[..., None])
    exact_chi = 1.0 / (2.0 * (1.0 - 2.0 * dim * kappa))
    assert chi.error[0] < 0.03 * exact_chi
    assert chi.z(exact_chi)[0] < 3.0, (chi.mean, chi.error, exact_chi)
    G = estimate(momentum_propagator(res.configs))
    exact_G = free_propagator(dim, L, kappa)
    assert G.z(exact_G).max() < sps.norm.isf(0.01 / (2 * exact_G.size))


@pytest.mark.slow
@pytest.mark.parametrize(("kappa", "lam"), [(0.4, 0.1), (0.5, 0.5)])
def test_matches_the_transfer_matrix_in_d1(kappa: float, lam: float) -> None:
    L = 16
    exact = transfer_matrix_exact(L, kappa, lam)
    res = run_cluster(dim=1, L=L, kappa=kappa, lam=lam, generator=torch.Generator().manual_seed(5),
                      params=ClusterParams(n_samples=12000, chains=64, thin=2, n_therm=200))
    chi = estimate(susceptibility(res.configs)[..., None])
    G = estimate(two_point_1d(res.configs))
    assert chi.error[0] < 0.04 * exact.chi
    assert chi.z(exact.chi)[0] < 3.0, (chi.mean, chi.error, exact.chi)
    assert G.z(exact.G).max() < sps.norm.isf(0.01 / (2 * G.mean.size)), (G.mean, exact.G)


@pytest.mark.slow
def test_agrees_with_hmc_in_the_broken_phase() -> None:
    """d = 2, L = 16, κ = 0.27, λ = 0.01 (ordered): ⟨|M|⟩ and S/V within 3σ of HMC."""
    dim, L, kappa, lam = 2, 16, 0.27, 0.01
    # every sweep kept: τ_int(|M|) ≈ 25 sweeps (cluster) and 11 trajectories (HMC), so
    # T = 1000 per chain is ≥ 40 τ_int, where the Γ-method's error is reliable
    cl = run_cluster(dim=dim, L=L, kappa=kappa, lam=lam, generator=torch.Generator().manual_seed(8),
                     params=ClusterParams(n_samples=16000, chains=16, thin=1, n_therm=300))
    hmc = run_hmc(dim=dim, L=L, kappa=kappa, lam=lam, generator=torch.Generator().manual_seed(9),
                  params=HmcParams(n_samples=16000, chains=16, thin=1, n_therm=300))
    for obs in (lambda c: c.mean(dim=(2, 3)).abs(),
                lambda c: action(c.reshape(-1, L, L), kappa, lam).reshape(c.shape[:2]) / L**2):
        a, b = estimate(obs(cl.configs)[..., None]), estimate(obs(hmc.configs)[..., None])
        z = abs(a.mean[0] - b.mean[0]) / math.hypot(a.error[0], b.error[0])
        assert z < 3.0, (a.mean, a.error, b.mean, b.error)
        assert a.error[0] < 0.01 * abs(a.mean[0])


def test_job_writes_an_hdf5_ensemble_like_hmc(tmp_path: Path) -> None:
    """``HmcSpec(algorithm="cluster")`` through core.jobs.run (what the CLI and HTTP run)."""
    from core.jobs.run import run_job
    from core.jobs.specs import HmcSpec
    from core.physics.io.ensemble import read_ensemble

    spec = HmcSpec(dim=2, L=4, kappa=0.2, lam=0.1, n_samples=64, chains=4, n_therm=20,
                   thin=2, algorithm="cluster", seed=3)
    result = run_job(spec, workdir=tmp_path)
    details = result.summary["hmc"]
    assert details["algorithm"] == "cluster" and details["samples_per_chain"] == 16
    assert 0.2 < details["acceptance"] < 0.8 and 0 < details["cluster_fraction"] <= 1
    assert result.ensemble is not None
    ens = read_ensemble(result.ensemble)
    assert ens.meta.method == "cluster" and ens.configs.shape == (64, 4, 4)
    assert ens.meta.observables["susceptibility"]["mean"] > 0


def test_spec_and_cli_refuse_an_odd_L_for_the_cluster_algorithm(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pydantic import ValidationError

    from cli.main import main
    from core.jobs.specs import HmcSpec

    with pytest.raises(ValidationError, match="even L"):
        HmcSpec(L=7, kappa=0.2, lam=0.1, n_samples=8, algorithm="cluster")
    code = main(["hmc", "--L", "7", "--kappa", "0.2", "--lam", "0.1", "--n-samples", "8",
                 "--algorithm", "cluster"])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    assert out.err.count("\n") == 1 and "even L" in out.err

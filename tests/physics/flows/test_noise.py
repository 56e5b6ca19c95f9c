"""Zero-sum block noise, eqs. (19)-(21): constraint, covariance and exact density."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from core.physics.flows.noise import BlockNoise
from core.physics.flows.upsample import downsample, to_blocks


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_block_sums_vanish_and_density_matches_multivariate_normal(dim: int) -> None:
    noise = BlockNoise(dim, sigma=0.7)
    g = torch.Generator().manual_seed(11)
    out = noise.sample((5, *([2] * dim)), g)
    assert out.zeta.shape == (5, *([4] * dim))
    blocks = to_blocks(out.zeta)
    assert blocks.sum(-1).abs().max() < 1e-12
    assert downsample(out.zeta).abs().max() < 1e-12
    n = 2**dim
    cov = 0.49 * (torch.eye(n - 1) - 1.0 / n)
    assert torch.allclose(noise.covariance().detach(), cov, atol=1e-15)
    mvn = MultivariateNormal(torch.zeros(n - 1), covariance_matrix=cov)
    direct = mvn.log_prob(blocks[..., :-1]).flatten(1).sum(1)
    assert torch.allclose(out.log_prob, direct, atol=1e-10, rtol=0)
    assert torch.allclose(noise.log_prob(out.zeta), direct, atol=1e-10, rtol=0)


def test_log_prob_uses_only_free_components() -> None:
    noise = BlockNoise(1, sigma=1.3)
    g = torch.Generator().manual_seed(2)
    zeta = noise.sample((4, 6), g).zeta
    shifted = zeta.clone()
    shifted[:, 1::2] += 5.0  # change the dependent (last) entries only
    assert torch.equal(noise.log_prob(shifted), noise.log_prob(zeta))


def test_sample_covariance_is_sigma_squared_projector() -> None:
    # empirical covariance of the full 2^d block vector ≈ σ²(I − 11ᵀ/n), 4σ-of-estimate bound
    noise = BlockNoise(2, sigma=0.5)
    g = torch.Generator().manual_seed(3)
    blocks = to_blocks(noise.sample((4000, 4, 4), g).zeta.detach()).reshape(-1, 4)
    emp = blocks.T @ blocks / blocks.shape[0]
    exact = 0.25 * (torch.eye(4) - 0.25)
    # std of an entry of a covariance estimate ≤ sqrt(2)σ²/sqrt(N)
    assert (emp - exact).abs().max() < 4 * math.sqrt(2) * 0.25 / math.sqrt(blocks.shape[0])


def test_init_sigma_from_coarse_std_and_gradient_flows() -> None:
    noise = BlockNoise(2)
    g = torch.Generator().manual_seed(4)
    coarse = 2.5 * torch.randn(64, 4, 4, generator=g)
    std = noise.init_sigma(coarse)
    assert math.isclose(float(noise.sigma.detach()), float(coarse.std()), rel_tol=1e-12)
    assert math.isclose(std, float(coarse.std()), rel_tol=1e-12)
    out = noise.sample((2, 4, 4), g)
    (out.zeta.square().sum() + out.log_prob.sum()).backward()
    assert noise.log_sigma.grad is not None and noise.log_sigma.grad.abs() > 0


def test_sampling_is_reproducible_with_seed() -> None:
    noise = BlockNoise(2, sigma=0.3)
    a = noise.sample((3, 2, 2), torch.Generator().manual_seed(9)).zeta
    b = noise.sample((3, 2, 2), torch.Generator().manual_seed(9)).zeta
    assert torch.equal(a, b)

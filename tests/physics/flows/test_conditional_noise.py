"""Conditional block noise: equal to BlockNoise at init, exact normalised Gaussian per block
(torch MultivariateNormal), zero block sums, its sampling law, Z2 and lattice symmetries, and
the stack's noise draws unchanged for the paper's base."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from core.physics.flows.architecture import FieldConfig, LevelConfig
from core.physics.flows.conditional_noise import ConditionalBlockNoise
from core.physics.flows.noise import BlockNoise
from core.physics.flows.rg_flow import SuperResolvingFlow
from core.physics.flows.upsample import block_size, from_blocks, to_blocks, upsample


def trained(dim: int, sigma: float = 0.6) -> ConditionalBlockNoise:
    noise = ConditionalBlockNoise(dim, sigma)
    with torch.no_grad():
        noise.width_weight.copy_(torch.tensor([0.45, -0.3]))
        noise.mean_weight.fill_(0.8)
    return noise


def coarse(dim: int, size: int = 4, batch: int = 3, seed: int = 0) -> Tensor:
    return 1.5 * torch.randn(batch, *([size] * dim), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_equals_block_noise_at_initialisation(dim: int) -> None:
    phi = coarse(dim)
    plain, cond = BlockNoise(dim, 0.7), ConditionalBlockNoise(dim, 0.7)
    a = plain.sample(phi.shape, torch.Generator().manual_seed(1))
    b = cond.sample(phi.shape, torch.Generator().manual_seed(1), coarse=phi)
    assert torch.equal(a.zeta, b.zeta)
    torch.testing.assert_close(b.log_prob, a.log_prob, rtol=0, atol=1e-12)
    torch.testing.assert_close(cond.log_prob(a.zeta, coarse=phi), plain.log_prob(a.zeta),
                               rtol=0, atol=1e-12)  # fmt: skip
    assert cond.init_sigma(phi) == plain.init_sigma(phi)
    assert torch.equal(cond.sigma, plain.sigma)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_log_prob_is_multivariate_normal_per_block(dim: int) -> None:
    noise, phi = trained(dim), coarse(dim)
    sample = noise.sample(phi.shape, torch.Generator().manual_seed(2), coarse=phi)
    blocks = to_blocks(sample.zeta).detach()
    n = block_size(dim)
    sigma = noise.block_log_sigma(phi).exp().detach()
    mean = noise.block_mean(phi).detach()
    assert float(sigma.std()) > 0.05 and float(mean.abs().max()) > 0.1  # really conditional
    cov = sigma[..., None, None] ** 2 * (torch.eye(n - 1) - 1.0 / n)
    mvn = torch.distributions.MultivariateNormal(mean[..., :-1], covariance_matrix=cov)
    want = mvn.log_prob(blocks[..., :-1]).reshape(phi.shape[0], -1).sum(1)
    with torch.no_grad():
        torch.testing.assert_close(sample.log_prob, want, rtol=0, atol=1e-11)
        torch.testing.assert_close(
            noise.log_prob(sample.zeta, coarse=phi), want, rtol=0, atol=1e-11
        )
    # zero block sums: U† annihilates ζ (measured ≤ 1e-15)
    assert float(blocks.sum(-1).abs().max()) < 1e-13
    assert float(mean.sum(-1).abs().max()) < 1e-13


def test_width_and_mean_follow_their_definitions() -> None:
    """σ_B = σ_θ (1 + φ_B²)^{a_1} (1 + mean_{nn} φ²)^{a_2}; c = 1 is linear interpolation."""
    noise = trained(2)
    phi = coarse(2, batch=1)
    sq = phi[0] ** 2
    i, j = 1, 2
    nn = (sq[i - 1, j] + sq[i + 1, j] + sq[i, j - 1] + sq[i, j + 1]) / 4
    want = 0.6 * (1 + sq[i, j]) ** 0.45 * (1 + nn) ** -0.3
    assert math.isclose(
        float(noise.block_log_sigma(phi)[0, i, j].exp().detach()), float(want), rel_tol=1e-13
    )
    line = ConditionalBlockNoise(1)
    with torch.no_grad():
        line.mean_weight.fill_(1.0)
        ramp = torch.arange(8.0).reshape(1, 8)  # φ linear on the coarse lattice (interior)
        fine = upsample(ramp) + from_blocks(line.block_mean(ramp))
    # the fine sites of coarse site 3 sit at 3 ∓ 1/4 in coarse units
    assert fine[0, 6:8].tolist() == [2.75, 3.25]


def test_sampling_law_matches_the_density() -> None:
    """Empirical mean and covariance of ζ' for one fixed φ against μ', σ_B²(I − J/n)."""
    noise = trained(2)
    phi = coarse(2, size=2, batch=1).expand(4000, 2, 2)
    with torch.no_grad():
        free = to_blocks(noise.sample(phi.shape, torch.Generator().manual_seed(3), phi).zeta)
        free = free[..., :-1]  # (N, 2, 2, 3)
        sigma = noise.block_log_sigma(phi[:1])[0].exp()
        mean = noise.block_mean(phi[:1])[0, ..., :-1]
    n_draws = free.shape[0]
    err_mean = (free.mean(0) - mean) / (sigma[..., None] / math.sqrt(n_draws))
    assert float(err_mean.abs().max()) < 4.5  # 12 means, z-scores
    centred = free - mean
    emp = torch.einsum("nabi,nabj->abij", centred, centred) / n_draws
    want = sigma[..., None, None] ** 2 * (torch.eye(3) - 0.25)
    # var of a covariance estimate: (Σ_ij² + Σ_ii Σ_jj)/N
    scale = torch.sqrt((want**2 + want.diagonal(dim1=-2, dim2=-1)[..., :, None]
                        * want.diagonal(dim1=-2, dim2=-1)[..., None, :]) / n_draws)  # fmt: skip
    assert float(((emp - want) / scale).abs().max()) < 4.5


def test_z2_and_lattice_symmetries() -> None:
    noise, phi = trained(2), coarse(2)
    zeta = noise.sample(phi.shape, torch.Generator().manual_seed(4), coarse=phi).zeta
    with torch.no_grad():
        base = noise.log_prob(zeta, coarse=phi)
        torch.testing.assert_close(noise.log_prob(-zeta, coarse=-phi), base, rtol=0, atol=1e-12)
        pairs = {  # (coarse map, fine map) that agree on the blocks
            "flip": (lambda p: torch.flip(p, (1,)), lambda p: torch.flip(p, (1,))),
            "transpose": (lambda p: p.transpose(1, 2), lambda p: p.transpose(1, 2)),
            "rot90": (lambda p: torch.rot90(p, 1, (1, 2)), lambda p: torch.rot90(p, 1, (1, 2))),
            "shift": (lambda p: torch.roll(p, 1, 2), lambda p: torch.roll(p, 2, 2)),
        }
        mean = from_blocks(noise.block_mean(phi))
        sigma = noise.block_log_sigma(phi)
        for name, (gc, gf) in pairs.items():
            torch.testing.assert_close(noise.log_prob(gf(zeta), coarse=gc(phi)), base,
                                       rtol=0, atol=1e-12, msg=name)  # fmt: skip
            torch.testing.assert_close(from_blocks(noise.block_mean(gc(phi))), gf(mean),
                                       rtol=0, atol=1e-15, msg=name)  # fmt: skip
            torch.testing.assert_close(
                noise.block_log_sigma(gc(phi)), gc(sigma), rtol=0, atol=1e-15
            )
        # not a symmetry: a fine translation by one site (moves sites across block boundaries)
        shifted = noise.log_prob(torch.roll(zeta, 1, 2), coarse=phi)
        assert float((shifted - base).abs().max()) > 1e-2


def test_needs_the_coarse_field_and_learns_from_samples() -> None:
    noise, phi = trained(1), coarse(1)
    with pytest.raises(ValueError, match="coarse field"):
        noise.sample(phi.shape, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="coarse field"):
        noise.log_prob(torch.zeros(3, 8))
    with pytest.raises(ValueError, match="coarse shape"):
        noise.sample((3, 6), torch.Generator().manual_seed(0), coarse=phi)
    # reparametrised samples carry gradients to a, c and σ_θ
    zeta = noise.sample(phi.shape, torch.Generator().manual_seed(5), coarse=phi).zeta
    zeta.square().sum().backward()
    for p in (noise.width_weight, noise.mean_weight, noise.log_sigma):
        assert p.grad is not None and bool(p.grad.abs().max() > 0)
    assert {k for k, _ in noise.state_dict().items()} == {
        "log_sigma",
        "width_weight",
        "mean_weight",
    }


@pytest.mark.parametrize("dim", [1, 2])
def test_stack_draws_the_same_noise_as_before_for_the_plain_base(dim: int) -> None:
    """forward draws level by level now; for BlockNoise the noise (and so every sample of a
    trained paper model) is the one drawn all at once up front, as before."""
    level = LevelConfig(FieldConfig(dim, 2))
    flow = SuperResolvingFlow.from_config(level, 2, 8, torch.Generator().manual_seed(0))
    phi = coarse(dim, size=2, batch=2)
    g = torch.Generator().manual_seed(7)
    old = [level.noise.sample((2, *([s] * dim)), g).zeta
           for level, s in zip(flow.levels, (2, 4), strict=True)]  # fmt: skip
    with torch.no_grad():
        new = flow(phi, torch.Generator().manual_seed(7))
        pushed = flow.push(phi, old)
    assert all(torch.equal(a, b) for a, b in zip(new.noise, old, strict=True))
    assert torch.equal(new.phi, pushed.phi) and torch.equal(new.log_q_rel, pushed.log_q_rel)

"""Langevin sampler (eq. 37): state handling and gradients through the steps."""

from __future__ import annotations

import pytest
import torch

from core.physics.mcmc import LangevinSampler


def _run(kappa, lam, state: torch.Tensor, seed: int = 3, n_steps: int = 8) -> torch.Tensor:
    sampler = LangevinSampler(2, 4, 16, torch.Generator().manual_seed(0), tau=0.05)
    sampler.phi = state.clone()
    sampler.generator.manual_seed(seed)  # same noise for every evaluation
    return sampler.step_many(kappa, lam, n_steps=n_steps, differentiable=True)


def _loss(phi: torch.Tensor) -> torch.Tensor:
    return (phi**2).mean() + 0.3 * (phi.mean(dim=(1, 2)) ** 2).mean()


@pytest.mark.parametrize("which", ["kappa", "lam"])
def test_gradient_matches_finite_differences(which: str):
    state = torch.randn(16, 4, 4, generator=torch.Generator().manual_seed(1))
    base = {"kappa": 0.22, "lam": 0.3}
    coupling = torch.tensor(base[which], requires_grad=True)
    args = {**base, which: coupling}
    (grad,) = torch.autograd.grad(_loss(_run(args["kappa"], args["lam"], state)), coupling)
    h = 1e-5
    up = _loss(_run(**{**base, which: base[which] + h}, state=state))
    down = _loss(_run(**{**base, which: base[which] - h}, state=state))
    fd = (up - down) / (2 * h)
    assert abs(float(grad)) > 1e-3
    assert abs(float(grad) - float(fd)) < 1e-7 * max(1.0, abs(float(fd)))


def test_state_is_detached_between_calls():
    sampler = LangevinSampler(2, 4, 8, torch.Generator().manual_seed(0))
    kappa = torch.tensor(0.2, requires_grad=True)
    out = sampler.step_many(kappa, 0.1, n_steps=3)
    assert out.requires_grad and not sampler.phi.requires_grad
    assert torch.equal(out.detach(), sampler.phi)
    out2 = sampler.step_many(kappa, 0.1, n_steps=2, differentiable=False)
    assert not out2.requires_grad
    assert torch.equal(out2, sampler.phi) and out2 is not sampler.phi


def test_thermalise_has_no_graph_and_reset_restarts():
    sampler = LangevinSampler(1, 6, 4, torch.Generator().manual_seed(0), tau=0.01)
    kappa = torch.tensor(0.2, requires_grad=True)
    phi = sampler.thermalise(kappa, 0.1, n_steps=20)
    assert not phi.requires_grad and phi.shape == (4, 6)
    before = phi.clone()
    sampler.thermalise(kappa, 0.1, n_steps=0, reset=True)
    assert not torch.equal(before, sampler.phi)


def test_one_step_is_eq37():
    g = torch.Generator().manual_seed(5)
    sampler = LangevinSampler(1, 5, 3, g, tau=0.1)
    phi0 = sampler.phi.clone()
    state = g.get_state()
    out = sampler.step_many(0.3, 0.2, n_steps=1, differentiable=False)
    g.set_state(state)
    eta = torch.randn(3, 5, generator=g)
    drift = 2 * 0.6 * phi0 + 0.8 * phi0**3 - 0.6 * (phi0.roll(1, 1) + phi0.roll(-1, 1))
    torch.testing.assert_close(out, phi0 - 0.1 * drift + (0.2**0.5) * eta)


def test_rejects_bad_tau():
    with pytest.raises(ValueError, match="tau"):
        LangevinSampler(1, 4, 2, torch.Generator(), tau=0.0)

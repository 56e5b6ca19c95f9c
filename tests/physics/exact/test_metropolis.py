"""Independence Metropolis (eq. 10) on synthetic proposals with known densities."""

import math

import torch

from core.physics.exact.metropolis import expected_acceptance, independence_metropolis


def _gauss_logpdf(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma)


def _batch_mean_error(x: torch.Tensor, n_batches: int = 40) -> float:
    means = x[: x.numel() // n_batches * n_batches].reshape(n_batches, -1).mean(dim=1)
    return float(means.std() / math.sqrt(n_batches))


def test_chain_reproduces_target_moments() -> None:
    # target p = N(0.5, 1), proposals q = N(0, 1.3²); log w carries an arbitrary constant.
    g = torch.Generator().manual_seed(3)
    x = 1.3 * torch.randn(40000, generator=g)
    log_w = _gauss_logpdf(x, 0.5, 1.0) - _gauss_logpdf(x, 0.0, 1.3) + 17.0
    res = independence_metropolis(log_w, torch.Generator().manual_seed(4))
    chain = res.chain(x)
    for values, exact in ((chain, 0.5), (chain**2, 1.25)):
        err = _batch_mean_error(values)
        assert abs(float(values.mean()) - exact) < 4 * err, (float(values.mean()), exact, err)
    # the chain's acceptance matches the chain-free pair estimate
    assert abs(res.acceptance - expected_acceptance(log_w)) < 0.02
    assert 0.5 < res.acceptance < 0.95


def test_perfect_proposals_are_always_accepted() -> None:
    res = independence_metropolis(torch.full((500,), -3.0), torch.Generator().manual_seed(0))
    assert res.acceptance == 1.0
    assert torch.equal(res.index, torch.arange(500))


def test_nonfinite_weights_never_enter_the_chain() -> None:
    log_w = torch.tensor([float("nan"), 0.0, float("inf"), 1.0, float("-inf"), 5.0])
    res = independence_metropolis(log_w, torch.Generator().manual_seed(0))
    assert res.index[0] == 1 and 2 not in res.index.tolist() and 4 not in res.index.tolist()


def test_same_seed_same_chain_float32_input_uses_float64() -> None:
    g = torch.Generator().manual_seed(5)
    lw = torch.randn(1000, generator=g).float() * 3
    a = independence_metropolis(lw, torch.Generator().manual_seed(9))
    b = independence_metropolis(lw.double(), torch.Generator().manual_seed(9))
    assert torch.equal(a.index, b.index) and a.acceptance == b.acceptance

"""Independence Metropolis on the fine lattice (paper eq. 10), in float64.

Proposals φ̃_i are drawn independently from the flow density q. With the importance
log-weight log w(φ) = log p(φ) − log q(φ) (any φ-independent constant, e.g. −log Z, may be
dropped: it cancels) the acceptance of eq. (10) is

    acc(φ_c → φ̃) = min(1, q(φ_c) p(φ̃) / (p(φ_c) q(φ̃))) = min(1, w(φ̃) / w(φ_c)),

i.e. accept when log u < log w(φ̃) − log w(φ_c) with u ~ U(0, 1). The chain starts at the
first proposal (accepted by convention). Everything here is float64 whatever the dtype the
flow ran in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MetropolisResult:
    """An independence-Metropolis chain over a list of proposals.

    ``index[t]`` is the proposal the chain sits on after step t; ``accepted[t]`` says whether
    step t moved to proposal t (step 0 always counts as accepted); ``acceptance`` is the
    fraction of accepted moves among steps 1..N−1.
    """

    index: Tensor
    accepted: Tensor
    acceptance: float

    def chain(self, values: Tensor) -> Tensor:
        """The Markov chain of any per-proposal quantity (first axis = proposals)."""
        return values[self.index]


def independence_metropolis(log_w: Tensor, generator: torch.Generator) -> MetropolisResult:
    """Run eq. (10) over proposals with log-weights ``log_w`` (shape ``(N,)``, any dtype).

    Non-finite log-weights are never accepted (a proposal whose density the flow could not
    evaluate must not enter the chain); a chain whose first proposal is non-finite starts at
    the first finite one.
    """
    if log_w.ndim != 1 or log_w.numel() == 0:
        raise ValueError(f"log_w must be a non-empty 1-d tensor, got shape {tuple(log_w.shape)}")
    lw = log_w.detach().to(device="cpu", dtype=torch.float64)
    finite = torch.isfinite(lw)
    if not bool(finite.any()):
        raise ValueError("no proposal has a finite log-weight: the flow's densities are broken")
    n = lw.numel()
    log_u = torch.log(torch.rand(n, generator=generator, dtype=torch.float64)).tolist()
    values = lw.tolist()
    ok = finite.tolist()
    start = ok.index(True)
    index = [start] * n
    accepted = [False] * n
    accepted[start] = True
    current, n_acc = values[start], 0
    for t in range(start + 1, n):
        if ok[t] and log_u[t] < values[t] - current:
            current = values[t]
            index[t] = t
            accepted[t] = True
            n_acc += 1
        else:
            index[t] = index[t - 1]
    acceptance = n_acc / (n - start - 1) if n - start > 1 else math.nan
    return MetropolisResult(
        index=torch.tensor(index, dtype=torch.long),
        accepted=torch.tensor(accepted, dtype=torch.bool),
        acceptance=acceptance,
    )


def expected_acceptance(log_w: Tensor) -> float:
    """Stationary acceptance E_{φ_c∼p, φ̃∼q}[min(1, w(φ̃)/w(φ_c))], a chain-free cross-check.

    Since p ∝ w·q, this is Σ_ij min(w_i, w_j) / (N Σ_i w_i) over pairs of independent
    proposals (at most 2000 of them), evaluated in float64 with the weights scaled by max w.
    """
    lw = log_w.detach().to(device="cpu", dtype=torch.float64)
    lw = lw[torch.isfinite(lw)][:2000]
    w = torch.exp(lw - lw.max())
    pair_min = torch.minimum(w[None, :], w[:, None])
    return float(pair_min.sum() / (w.numel() * w.sum()))

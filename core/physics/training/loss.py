"""Reverse-KL loss with learnable couplings (paper eqs. 11, 12, 31-34).

Densities. Coarse p_L[c_L](φ) = e^{−S_L(φ)}/Z_L, fine target p[c](φ̃) = e^{−S(φ̃)}/Z; the flow
reports log q(φ̃) = log p_L(φ) + log_q_rel = −S_L(φ) − log Z_L + log_q_rel. Per sample the
log-weight *without* partition functions is

    log w = −S(φ̃) + S_L(φ) − log_q_rel       (= log p − log q + log Z − log Z_L).

Reverse KL (eq. 31):

    D_KL(q‖p) = E_q[log q − log p]
              = E_q[S(φ̃) − S_L(φ) + log_q_rel] + log Z − log Z_L
              = D^(I) + D^(II),    D^(I) = −E_q[log w]  (eq. 32),  D^(II) = log Z − log Z_L (33).

Sign bookkeeping for learnable couplings, with ∇_c log Z[c] = −E_{p[c]}[∂S/∂c] (eq. 34):

* coarse couplings c_L (IR-matching): D^(II) ∋ −log Z_L, so ∇_{c_L} D^(II) = +E_{p_L}[∂S_L/∂c_L].
  D^(I) contains −S_L(φ), whose explicit derivative is −E_q[∂S_L/∂c_L]; since the coarse φ
  are p_L samples the two cancel in expectation, and what moves c_L is the pathwise gradient
  of φ(c_L) through the differentiable Langevin sampler. Dropping D^(II) leaves the
  explicit −E[∂S_L/∂κ_L] = +2E[Σφφ] > 0 uncancelled: κ_L is driven towards the minimum of
  log Z_L (κ_L → 0) and D^(I) falls below any bound; flipping the sign doubles that drive.
* fine couplings c (UV-matching): D^(II) ∋ +log Z, so ∇_c D^(II) = −E_{p[c]}[∂S/∂c]; with the
  explicit +E_q[∂S/∂c] from D^(I) the total is E_q[∂S/∂c] − E_p[∂S/∂c]: c moves until the
  target's expectations match the flow's.

The surrogate whose gradient is ∇D_KL is therefore −mean(log w) + s·Σ_k c_k·E_k with
E_k = E[∂S/∂c_k] detached, s = +1 for coarse and −1 for fine couplings.

Monitoring: ESS/N = (Σw)²/(NΣw²) (eq. 12) and the KL estimate
D̂_KL = −mean(log w) + log mean(w) (the unknown log Z − log Z_L estimated by log mean w; ≥ 0
up to noise), all in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from core.physics.training.couplings import LearnableCouplings
from core.physics.training.logz import LogZEstimate

Side = Literal["coarse", "fine"]


def logz_surrogate(couplings: LearnableCouplings, estimate: LogZEstimate, side: Side) -> Tensor:
    """s·Σ_k c_k E_{p[c]}[∂S/∂c_k] (E detached), whose gradient is ∇_c D^(II):
    s = +1 for the coarse side (−log Z_L), −1 for the fine side (+log Z)."""
    sign = 1.0 if side == "coarse" else -1.0
    expect = estimate.as_tensor().to(couplings.kappa.device)
    return sign * (couplings.stacked() * expect).sum()


def ess_fraction(log_w: Tensor) -> float:
    """ESS/N of eq. (12) from log-weights, float64 (non-finite weights count as zero)."""
    lw = log_w.detach().to(torch.float64).reshape(-1)
    lw = torch.where(torch.isfinite(lw), lw, torch.full_like(lw, -math.inf))
    if not bool(torch.isfinite(lw).any()):
        return 0.0
    w = torch.exp(lw - lw.max())
    return float(w.sum() ** 2 / (lw.numel() * (w * w).sum()))


def kl_estimate(log_w: Tensor) -> float:
    """D̂_KL = −mean(log w) + log mean(w), float64."""
    lw = log_w.detach().to(torch.float64).reshape(-1)
    return float(-lw.mean() + torch.logsumexp(lw, 0) - math.log(lw.numel()))


@dataclass(frozen=True)
class LossTerms:
    """One evaluation: ``surrogate`` to backpropagate, and float64 monitors."""

    surrogate: Tensor
    d1: float
    kl: float
    ess: float
    log_w: Tensor


def reverse_kl(log_w: Tensor, logz_terms: list[Tensor] | None = None,
               regulariser: Tensor | None = None) -> LossTerms:
    """Surrogate −mean(log w) [+ D^(II) surrogates] [+ regulariser] and its monitors."""
    d1 = -log_w.mean()
    surrogate = d1
    for term in logz_terms or []:
        surrogate = surrogate + term
    if regulariser is not None:
        surrogate = surrogate + regulariser
    lw = log_w.detach()
    return LossTerms(surrogate=surrogate, d1=float(d1.detach()), kl=kl_estimate(lw),
                     ess=ess_fraction(lw), log_w=lw)

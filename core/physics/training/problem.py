"""One training objective: flow + coarse/fine couplings + a coarse source → the KL loss.

A proposal φ̃ carries log q up to the constant −log Z_L (core.physics.training.loss):

    super-resolving flow:  log q(φ̃) = −S_L[c_L](φ) + log_q_rel       (φ the coarse field)
    baseline (Gaussian prior, normalised):  log q(φ̃) as the flow reports it

and log w = −S[c](φ̃) − log q(φ̃), float64. ``step_loss`` builds the surrogate of
core.physics.training.loss (D^(I) + the D^(II) terms of whichever couplings learn + λ_K · mean
kinetic energy, Finlay et al. 2020).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from core.physics.control import StopHook
from core.physics.flows.gap import GapMeasure, measure_baseline_gap, measure_gap
from core.physics.lattice.action import action
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.loss import LossTerms, reverse_kl


class CoarseSource(Protocol):
    side: str
    should_stop: StopHook | None  # asked during thermalisation

    def draw(self) -> Tensor: ...

    def logz_terms(self) -> tuple[list[Tensor], dict[str, float]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Proposal:
    """Fine configurations, log q up to −log Z_L (float64), kinetic energy or None, and the
    coarse fields they came from (None for the baseline)."""

    phi: Tensor
    log_q: Tensor
    kinetic: Tensor | None
    phi_coarse: Tensor | None


def _accepts_kinetic(flow: nn.Module) -> bool:
    try:
        return "kinetic" in inspect.signature(flow.forward).parameters
    except (TypeError, ValueError):
        return False


class Matching(nn.Module):
    """Parameters: the flow's and the learnable couplings (``coarse``, ``fine``)."""

    def __init__(self, flow: nn.Module, coarse: LearnableCouplings, fine: LearnableCouplings,
                 source: CoarseSource | None, generator: torch.Generator, *,
                 kinetic_weight: float = 0.0, baseline_batch: int = 0) -> None:
        super().__init__()
        self.flow, self.coarse, self.fine = flow, coarse, fine
        self.source = source
        self.generator = generator
        self.kinetic_weight = float(kinetic_weight)
        self.baseline_batch = baseline_batch
        self._kinetic_kw = _accepts_kinetic(flow)
        self.should_stop: StopHook | None = None

    def set_should_stop(self, should_stop: StopHook | None) -> None:
        """Cancellation for the long phases outside the trainer's step loop: the source's
        thermalisation and the final evaluation (they raise SamplingCancelled). They write
        no checkpoint, so a ``should_stop`` with an ``urgent`` method (the worker's
        deadline) lends that one: a soft deadline waits for the next training step."""
        should_stop = getattr(should_stop, "urgent", should_stop)
        self.should_stop = should_stop
        if self.source is not None:
            self.source.should_stop = should_stop

    def push(self, phi_coarse: Tensor, solver: Any = None,
             generator: torch.Generator | None = None) -> Proposal:
        """T_θ(φ) with log q = −S_L[c_L](φ) + log_q_rel (float64)."""
        kw: dict[str, Any] = {}
        if solver is not None:
            kw["solver"] = solver
        if self._kinetic_kw and self.kinetic_weight > 0 and torch.is_grad_enabled():
            kw["kinetic"] = True
        out = self.flow(phi_coarse, generator or self.generator, **kw)
        s_coarse = action(phi_coarse.to(torch.float64), self.coarse.kappa, self.coarse.lam)
        log_q = -s_coarse + out.log_q_rel.to(torch.float64)
        return Proposal(phi=out.phi, log_q=log_q, kinetic=getattr(out, "kinetic", None),
                        phi_coarse=phi_coarse)

    def propose(self) -> Proposal:
        """One training batch of proposals."""
        if self.source is None:  # baseline: the flow samples its own Gaussian prior
            kin = self.kinetic_weight > 0 and torch.is_grad_enabled()
            out = self.flow(self.baseline_batch, self.generator, kinetic=kin)
            return Proposal(phi=out.phi, log_q=out.log_q.to(torch.float64),
                            kinetic=getattr(out, "kinetic", None), phi_coarse=None)
        return self.push(self.source.draw())

    def log_w(self, proposal: Proposal) -> Tensor:
        """log w = −S[c](φ̃) − log q(φ̃), float64, per proposal."""
        s_fine = action(proposal.phi.to(torch.float64), self.fine.kappa, self.fine.lam)
        return -s_fine - proposal.log_q

    def step_loss(self) -> tuple[LossTerms, dict[str, float]]:
        """Surrogate and monitors for one optimiser step."""
        prop = self.propose()
        terms: list[Tensor] = []
        metrics: dict[str, float] = {}
        if self.source is not None:
            terms, metrics = self.source.logz_terms()
        reg = None
        if self.kinetic_weight > 0 and prop.kinetic is not None:
            kin = prop.kinetic.to(torch.float64).mean()
            reg = self.kinetic_weight * kin
            metrics["kinetic"] = float(kin.detach())
        return reverse_kl(self.log_w(prop), terms, reg), metrics

    def gap(self, phi_coarse: Tensor, generator: torch.Generator) -> GapMeasure:
        """Solver gap on these coarse fields (super-resolving flows) or prior draws."""
        if self.source is None:
            return measure_baseline_gap(self.flow, phi_coarse.shape[0], generator)
        return measure_gap(self.flow, phi_coarse, generator)

    def project(self) -> None:
        """Keep learnable λ ≥ 0 after an optimiser step (eq. 3 is unbounded below otherwise)."""
        with torch.no_grad():
            for c in (self.coarse, self.fine):
                if "lam" in c.learnable:
                    c.lam.clamp_(min=0.0)

    def source_state(self) -> dict[str, Any]:
        return {} if self.source is None else self.source.state_dict()

    def load_source_state(self, state: dict[str, Any]) -> None:
        if self.source is not None:
            self.source.load_state_dict(state)


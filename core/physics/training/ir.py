"""IR-matching (paper Section VI): fixed fine couplings, learnable coarse couplings c_L.

Coarse samples come from the batched Langevin sampler (eq. 37, τ = 0.01), thermalised once
(Appendix C: 5·10⁴ steps from i.i.d. Gaussian fields), then advanced 500 steps before every
training step *with the graph kept*, so ∂φ/∂c_L reaches the loss (the pathwise gradient that
moves c_L). The D^(II) gradient +E_{p_L[c_L]}[∂S_L/∂c_L] comes from a separate HMC set on the
coarse lattice, reused by reweighting (core.physics.training.logz). See
core.physics.training.loss for why the explicit −E[∂S_L/∂c_L] of D^(I) and this term cancel
in expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from core.physics.control import StopHook
from core.physics.mcmc.langevin import LangevinSampler
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.logz import LogZConfig, LogZGradient
from core.physics.training.loss import logz_surrogate


@dataclass(frozen=True)
class IRConfig:
    """Langevin schedule and the log Z set of the IR source: ``n_therm`` thermalisation
    steps (a job's: core.jobs.specs.LANGEVIN_THERM), ``n_between`` steps before every batch,
    step size ``tau``."""

    n_therm: int
    tau: float = 0.01
    n_between: int = 500
    logz: LogZConfig = field(default_factory=LogZConfig)
    logz_sign: float = 1.0  # +1 is correct; 0 drops and −1 flips D^(II) (symptom tests only)


class IRSource:
    """Differentiable coarse batches at the learnable coarse couplings."""

    side = "coarse"

    def __init__(self, *, dim: int, coarse_L: int, batch: int, coarse: LearnableCouplings,
                 generator: torch.Generator, logz_generator: torch.Generator,
                 config: IRConfig, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu") -> None:
        self.config = config
        self.coarse = coarse
        self.langevin = LangevinSampler(dim, coarse_L, batch, generator, tau=self.config.tau,
                                        device=device, dtype=dtype)
        self.logz = LogZGradient(dim=dim, L=coarse_L, couplings=coarse.values(),
                                 generator=logz_generator, config=self.config.logz,
                                 device=device)
        self.thermalised = False
        self.should_stop: StopHook | None = None  # asked during thermalisation

    def draw(self) -> Tensor:
        """The next training batch (graph back to c_L when c_L learns). The first call
        thermalises (``n_therm`` steps), asking ``should_stop`` as it goes."""
        c = self.coarse
        if not self.thermalised:
            self.langevin.thermalise(c.kappa, c.lam, self.config.n_therm,
                                     should_stop=self.should_stop)
            self.thermalised = True
        learn = bool(c.learnable)
        return self.langevin.step_many(c.kappa, c.lam, self.config.n_between,
                                       differentiable=learn)

    def logz_terms(self) -> tuple[list[Tensor], dict[str, float]]:
        """[∇D^(II) surrogate for c_L] and monitors (empty when c_L is frozen)."""
        if not self.coarse.learnable or self.config.logz_sign == 0.0:
            return [], {}
        est = self.logz.expectation(self.coarse.values())
        term = self.config.logz_sign * logz_surrogate(self.coarse, est, "coarse")
        return [term], {"logz_ess": est.ess, "logz_resampled": float(est.resampled)}

    def state_dict(self) -> dict[str, Any]:
        return {"langevin_phi": self.langevin.phi.clone(), "thermalised": self.thermalised,
                "logz": self.logz.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.langevin.phi = state["langevin_phi"].clone()
        self.thermalised = bool(state["thermalised"])
        self.logz.load_state_dict(state["logz"])

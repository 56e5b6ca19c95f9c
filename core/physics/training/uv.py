"""UV-matching (paper Appendix A): fixed coarse couplings, learnable fine couplings c.

Coarse samples are exact HMC (the coarse couplings do not move, so no gradient through the
sampler is needed): ``batch`` independent chains, thermalised once, advanced ``n_between``
trajectories before every training step. The D^(II) gradient −E_{p[c]}[∂S/∂c] comes from
fine-lattice HMC reused by reweighting (core.physics.training.logz, eq. 36); with the explicit
+E_q[∂S/∂c] of D^(I) the coupling moves until E_q[∂S/∂c] = E_{p[c]}[∂S/∂c].

Iterating a trained level to finer lattices (figs. 7-10): after each further level the
fine coupling is the one that maximises ESS/N of the proposals. Because S is linear in
(κ, λ), log w(κ) = −S[κ](φ̃) − log q(φ̃) is re-evaluated for any κ without pushing again
(:func:`ess_maximising_kappa`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from core.physics.control import SamplingCancelled, StopHook
from core.physics.lattice.action import action, coupling_derivatives
from core.physics.lattice.couplings import Couplings
from core.physics.mcmc.hmc import HMCSampler
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.logz import LogZConfig, LogZGradient
from core.physics.training.loss import ess_fraction, logz_surrogate


@dataclass(frozen=True)
class UVConfig:
    n_therm: int = 200
    n_between: int = 2
    logz: LogZConfig = field(default_factory=LogZConfig)


class UVSource:
    """Exact coarse HMC batches at fixed couplings + the fine-lattice log Z gradient."""

    side = "fine"

    def __init__(self, *, dim: int, coarse_L: int, fine_L: int, batch: int,
                 coarse: Couplings, fine: LearnableCouplings, generator: torch.Generator,
                 logz_generator: torch.Generator, config: UVConfig | None = None,
                 dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu") -> None:
        self.config = config or UVConfig()
        self.fine, self.dtype = fine, dtype
        self.hmc = HMCSampler(dim=dim, L=coarse_L, chains=batch, generator=generator,
                              kappa=coarse.kappa, lam=coarse.lam, device=device,
                              dtype=torch.float64)
        self.logz = LogZGradient(dim=dim, L=fine_L, couplings=fine.values(),
                                 generator=logz_generator, config=self.config.logz,
                                 device=device)
        self.thermalised = False
        self.should_stop: StopHook | None = None  # asked during thermalisation

    def _check_stop(self, _stats: object) -> None:
        if self.should_stop is not None and self.should_stop():
            raise SamplingCancelled("HMC thermalisation of the UV source stopped")

    def draw(self) -> Tensor:
        if not self.thermalised:
            self.hmc.thermalise(self.config.n_therm, callback=self._check_stop)
            self.thermalised = True
        for _ in range(self.config.n_between):
            self.hmc.trajectory()
        return self.hmc.phi.to(self.dtype).clone()

    def logz_terms(self) -> tuple[list[Tensor], dict[str, float]]:
        if not self.fine.learnable:
            return [], {}
        est = self.logz.expectation(self.fine.values())
        return [logz_surrogate(self.fine, est, "fine")], {
            "logz_ess": est.ess, "logz_resampled": float(est.resampled)}

    def state_dict(self) -> dict[str, Any]:
        return {"hmc_phi": self.hmc.phi.clone(), "hmc_step": self.hmc.step_size,
                "thermalised": self.thermalised, "logz": self.logz.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.hmc.phi = state["hmc_phi"].clone()
        self.hmc.set_step_size(float(state["hmc_step"]))
        self.thermalised = bool(state["thermalised"])
        self.logz.load_state_dict(state["logz"])


@dataclass(frozen=True)
class CouplingScan:
    """ESS/N of fixed proposals against the fine κ (λ fixed), and the maximiser."""

    kappas: list[float]
    ess: list[float]
    best_kappa: float
    best_ess: float


def ess_maximising_kappa(phi: Tensor, log_q: Tensor, lam: float, kappa0: float,
                         width: float = 0.05, n_grid: int = 41,
                         refine: int = 2) -> CouplingScan:
    """Grid search (refined ``refine`` times around the best point) of ESS/N over κ.

    log w(κ) = −S[κ_0](φ̃) − (κ − κ_0)·∂S/∂κ(φ̃) − log q(φ̃): one pass over the proposals.
    """
    phi64 = phi.to(torch.float64)
    base = -action(phi64, kappa0, lam) - log_q.double()
    dk = coupling_derivatives(phi64).dkappa
    centre, half = kappa0, width
    kappas: list[float] = []
    values: list[float] = []
    for _ in range(refine + 1):
        grid = torch.linspace(centre - half, centre + half, n_grid, dtype=torch.float64)
        for k in grid.tolist():
            kappas.append(k)
            values.append(ess_fraction(base - (k - kappa0) * dk))
        best = max(range(len(values)), key=values.__getitem__)
        centre, half = kappas[best], 2 * half / (n_grid - 1)
    order = sorted(range(len(kappas)), key=kappas.__getitem__)
    best = max(range(len(values)), key=values.__getitem__)
    return CouplingScan(kappas=[kappas[i] for i in order], ess=[values[i] for i in order],
                        best_kappa=kappas[best], best_ess=values[best])

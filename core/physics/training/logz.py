"""The D^(II) gradient: ∇_c log Z[c] from Monte Carlo, reused by reweighting (eqs. 34, 36).

    ∇_c log Z[c] = −E_{φ∼p[c]}[∂S[c]/∂c]                                       (eq. 34)

with ∂S/∂κ = −2Σ φ_xφ_{x+μ}, ∂S/∂λ = Σ(φ⁴ − 2φ²) (eq. 35). The sample set is drawn by HMC at
couplings c₀ (Appendix C: ≈3k configurations, every trajectory kept after thermalisation)
and is never pushed through the flow. At later couplings c it is reweighted (eq. 36):

    E_{p[c]}[X] = E_{p[c₀]}[X w] / E_{p[c₀]}[w],   log w = −(S[c] − S[c₀])(φ) = −(c − c₀)·∂S/∂c

(the action is linear in (κ, λ), so only ∂S/∂c per configuration needs storing). When the
reweighting ESS/N = (Σw)²/(NΣw²) drops below R_W (default 0.85) the set is drawn anew at c,
continuing the same HMC chains (re-thermalised for a few trajectories).

Errors are Γ-method errors (core.physics.stats.gamma) of the linearised ratio estimator
d_i = w_i (X_i − X̄) / w̄ over the (T, C) layout of the chains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from core.physics.lattice.action import coupling_derivatives
from core.physics.lattice.couplings import Couplings
from core.physics.mcmc.hmc import HMCSampler
from core.physics.stats.gamma import gamma_method


@dataclass(frozen=True)
class LogZConfig:
    """HMC set for the log Z gradient: ``n_configs`` ≈ T·chains kept (every trajectory),
    ``n_therm`` thermalisation trajectories at the start (ε tuned), ``n_retherm`` before each
    later resample, resampling threshold ``r_w`` on the reweighting ESS/N."""

    n_configs: int = 3000
    chains: int = 30
    n_therm: int = 200
    n_retherm: int = 20
    r_w: float = 0.85


@dataclass(frozen=True)
class LogZEstimate:
    """E_{p[c]}[∂S/∂κ], E_{p[c]}[∂S/∂λ] (= −∇ log Z) at c with Γ-method errors, the
    reweighting ESS/N of the set used, and whether the set was drawn anew for this call."""

    dS_dkappa: float
    dS_dlam: float
    error_kappa: float
    error_lam: float
    ess: float
    resampled: bool
    couplings: Couplings

    def as_tensor(self) -> Tensor:
        return torch.tensor([self.dS_dkappa, self.dS_dlam], dtype=torch.float64)


class LogZGradient:
    """Provider of E_{p[c]}[∂S/∂c] on one lattice (coarse for IR, fine for UV)."""

    def __init__(self, *, dim: int, L: int, couplings: Couplings, generator: torch.Generator,
                 config: LogZConfig | None = None, device: str | torch.device = "cpu") -> None:
        self.config = config or LogZConfig()
        self.dim, self.L = dim, L
        self.generator = generator
        self.sampler = HMCSampler(dim=dim, L=L, chains=self.config.chains, generator=generator,
                                  kappa=couplings.kappa, lam=couplings.lam, device=device,
                                  dtype=torch.float64)
        self.reference: Couplings | None = None
        self.derivs: Tensor | None = None  # (T, C, 2) float64: ∂S/∂κ, ∂S/∂λ
        self.n_resamples = 0

    def _draw(self, c: Couplings) -> None:
        """Draw a fresh set at c: (re)thermalise the HMC chains, then keep every trajectory."""
        cfg = self.config
        self.sampler.set_couplings(c.kappa, c.lam)
        self.sampler.thermalise(cfg.n_therm if self.derivs is None else cfg.n_retherm)
        per_chain = max(2, -(-cfg.n_configs // cfg.chains))
        rows = []
        for _ in range(per_chain):
            self.sampler.trajectory()
            d = coupling_derivatives(self.sampler.phi.to(torch.float64))
            rows.append(torch.stack([d.dkappa, d.dlam], dim=-1).cpu())
        self.derivs = torch.stack(rows)
        self.reference = c
        self.n_resamples += 1

    def log_weights(self, c: Couplings) -> Tensor:
        """log w = −(c − c₀)·∂S/∂c per configuration, shape (T, C), float64."""
        assert self.derivs is not None and self.reference is not None
        dc = torch.tensor([c.kappa - self.reference.kappa, c.lam - self.reference.lam],
                          dtype=torch.float64)
        return -(self.derivs @ dc)

    def reweighting_ess(self, c: Couplings) -> float:
        """(Σw)² / (N Σw²) of the stored set reweighted to c."""
        lw = self.log_weights(c).reshape(-1)
        w = torch.exp(lw - lw.max())
        return float(w.sum() ** 2 / (w.numel() * (w * w).sum()))

    def expectation(self, c: Couplings) -> LogZEstimate:
        """E_{p[c]}[∂S/∂c] by eq. (36); resamples at c first when ESS/N < R_W (or no set)."""
        resampled = False
        if self.derivs is None or self.reweighting_ess(c) < self.config.r_w:
            self._draw(c)
            resampled = True
        assert self.derivs is not None
        lw = self.log_weights(c)
        w = torch.exp(lw - lw.max())
        w = w / w.mean()
        means = (w[..., None] * self.derivs).mean(dim=(0, 1))
        errors = []
        for k in range(2):
            series = w * (self.derivs[..., k] - means[k])
            errors.append(gamma_method(series.numpy()).error)
        return LogZEstimate(
            dS_dkappa=float(means[0]), dS_dlam=float(means[1]),
            error_kappa=errors[0], error_lam=errors[1],
            ess=self.reweighting_ess(c), resampled=resampled, couplings=c,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed for a bit-exact resume (the generator's state is saved by the
        owner of the generator)."""
        ref = self.reference
        return {
            "phi": self.sampler.phi.clone(),
            "step_size": self.sampler.step_size,
            "sampler_couplings": [float(self.sampler.kappa), float(self.sampler.lam)],
            "reference": None if ref is None else [ref.kappa, ref.lam],
            "derivs": None if self.derivs is None else self.derivs.clone(),
            "n_resamples": self.n_resamples,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.phi = state["phi"].clone()
        self.sampler.set_step_size(float(state["step_size"]))
        self.sampler.set_couplings(*state["sampler_couplings"])
        ref = state["reference"]
        self.reference = None if ref is None else Couplings(kappa=ref[0], lam=ref[1])
        self.derivs = None if state["derivs"] is None else state["derivs"].clone()
        self.n_resamples = int(state["n_resamples"])

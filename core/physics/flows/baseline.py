"""The paper's comparison model: a full-lattice CNF on a Gaussian prior (Section VI B).

    z ~ N(0, σ_prior² I) on the fine lattice,   φ = F(z),
    log q(φ) = Σ_x [−½ log 2π − log σ_prior − z_x²/(2σ_prior²)] − log|det ∂F/∂z|   (eq. 13, 28)

F uses :class:`core.physics.flows.vector_field.BaselineVectorField` — full translation and
point-group symmetry, a kernel spanning the lattice — configured by a
:class:`core.physics.flows.architecture.FieldConfig` with ``kernel_size`` None; the paper's
is F = 30, D = 10, F' = 20, D' = 20 (:meth:`FieldConfig.paper_baseline`).

σ_prior: fixed to 1 by default (the standard choice of Gerdes et al., whom the paper follows;
the flow itself can rescale, since H_1(Ψ) = Ψ at the centre tap is a learnable linear
growth). With ``learn_prior_sigma=True`` it is a learnable parameter. Either way it is
stored as ``prior_log_sigma`` (``requires_grad`` tells which), so a saved model is
self-contained. Unlike the super-resolving flow, log q here is normalised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.physics.flows.architecture import FieldConfig
from core.physics.flows.cnf import CNF
from core.physics.flows.solver import SolverConfig
from core.physics.flows.vector_field import BaselineVectorField


@dataclass(frozen=True)
class BaselineSample:
    """φ ``(B, L^d)``, normalised log q(φ) ``(B,)``, the prior draw z, kinetic energy."""

    phi: Tensor
    log_q: Tensor
    z: Tensor
    kinetic: Tensor | None


@dataclass(frozen=True)
class BaselineInverse:
    """z = F⁻¹(φ) and the normalised log q(φ) of any configuration φ."""

    z: Tensor
    log_q: Tensor


class BaselineFlow(nn.Module):
    """Full-lattice CNF with Gaussian prior on a ``(B, L, ..., L)`` lattice: the field
    ``config`` (d, F, D, F', D'; ``kernel_size`` None), integrated by ``solver`` (None: the
    library's :class:`SolverConfig`)."""

    def __init__(
        self,
        config: FieldConfig,
        L: int,
        solver: SolverConfig | None = None,
        learn_prior_sigma: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = config.dim
        self.L = L
        self.cnf = CNF(BaselineVectorField(config, L, generator), solver)
        self.prior_log_sigma = nn.Parameter(torch.zeros(()), requires_grad=learn_prior_sigma)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log N(z; 0, σ_prior² I) per configuration."""
        volume = math.prod(z.shape[1:])
        quad = z.square().flatten(1).sum(1) * torch.exp(-2 * self.prior_log_sigma)
        return -0.5 * quad - volume * (0.5 * math.log(2 * math.pi) + self.prior_log_sigma)

    def forward(
        self,
        n: int | None = None,
        generator: torch.Generator | None = None,
        z: Tensor | None = None,
        solver: SolverConfig | None = None,
        kinetic: bool = False,
    ) -> BaselineSample:
        """Draw n prior configurations (or push the given z) through F."""
        if z is None:
            if n is None or generator is None:
                raise ValueError("give either z or both n and generator")
            p = self.prior_log_sigma
            eps = torch.randn(
                (n, *([self.L] * self.dim)), generator=generator, device=p.device, dtype=p.dtype
            )
            z = eps * p.exp()
        out = self.cnf(z, solver=solver, kinetic=kinetic)
        log_q = self.prior_log_prob(z) - out.log_det
        return BaselineSample(phi=out.x, log_q=log_q, z=z, kinetic=out.kinetic)

    def inverse(self, phi: Tensor, solver: SolverConfig | None = None) -> BaselineInverse:
        """z = F⁻¹(φ) and log q(φ) = log N(z) + log|det ∂F⁻¹/∂φ|."""
        back = self.cnf.inverse(phi, solver=solver)
        return BaselineInverse(z=back.x, log_q=self.prior_log_prob(back.x) + back.log_det)

"""Learnable bare couplings (κ, λ) of the φ⁴ action (paper eq. 3, Section V).

κ learns by default, λ optionally; a coupling that does not learn is a buffer, so it is saved
with the model but never touched by the optimiser. Couplings live in float64 whatever the
flow's dtype: they are few, and the log Z gradient (eq. 34) is a small difference of large
sums.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from core.physics.lattice.couplings import Couplings


class LearnableCouplings(nn.Module):
    """(κ, λ) as 0-d float64 tensors; ``learn_kappa``/``learn_lam`` pick the parameters."""

    def __init__(self, couplings: Couplings, *, learn_kappa: bool = True,
                 learn_lam: bool = False) -> None:
        super().__init__()
        for name, value, learn in (("kappa", couplings.kappa, learn_kappa),
                                   ("lam", couplings.lam, learn_lam)):
            t = torch.tensor(float(value), dtype=torch.float64)
            if learn:
                self.register_parameter(name, nn.Parameter(t))
            else:
                self.register_buffer(name, t)

    kappa: Tensor
    lam: Tensor

    @property
    def learnable(self) -> tuple[str, ...]:
        """Names of the couplings that learn, in the order (kappa, lam)."""
        return tuple(n for n, _ in self.named_parameters(recurse=False))

    def values(self) -> Couplings:
        """The current couplings as a frozen value object (floats, detached)."""
        return Couplings(kappa=float(self.kappa.detach()), lam=float(self.lam.detach()))

    def as_dict(self) -> dict[str, float]:
        return self.values().as_dict()

    def stacked(self) -> Tensor:
        """(κ, λ) as a differentiable float64 tensor of shape (2,)."""
        return torch.stack([self.kappa, self.lam])

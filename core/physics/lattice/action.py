"""The lattice φ⁴ action, its force and its coupling derivatives.

A field batch has shape ``(B, L, ..., L)`` with d lattice axes and periodic boundaries.
Couplings may be Python floats or 0-d tensors (learnable couplings stay differentiable).

    S(φ)    = Σ_x [(1−2λ)φ_x² + λφ_x⁴ − 2κ Σ_μ φ_x φ_{x+μ}]                 (paper eq. 3)
    ∂S/∂φ_x = 2(1−2λ)φ_x + 4λφ_x³ − 2κ Σ_μ (φ_{x+μ} + φ_{x−μ})
    ∂S/∂κ   = −2 Σ_{x,μ} φ_x φ_{x+μ},   ∂S/∂λ = Σ_x (φ_x⁴ − 2φ_x²)            (paper eq. 35)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def lattice_dims(phi: Tensor) -> tuple[int, ...]:
    """The lattice axes of a batch ``(B, L, ..., L)``."""
    return tuple(range(1, phi.ndim))


def hopping(phi: Tensor) -> Tensor:
    """Σ_{x,μ} φ_x φ_{x+μ} per configuration, shape ``(B,)``."""
    dims = lattice_dims(phi)
    total = torch.zeros_like(phi)
    for mu in dims:
        total = total + phi * torch.roll(phi, shifts=-1, dims=mu)
    return total.sum(dim=dims)


def neighbour_sum(phi: Tensor) -> Tensor:
    """Σ_μ (φ_{x+μ} + φ_{x−μ}) at every site, same shape as ``phi``."""
    total = torch.zeros_like(phi)
    for mu in lattice_dims(phi):
        total = total + torch.roll(phi, shifts=-1, dims=mu) + torch.roll(phi, shifts=1, dims=mu)
    return total


def action(phi: Tensor, kappa: float | Tensor, lam: float | Tensor) -> Tensor:
    """S(φ) of eq. (3) for each configuration of the batch, shape ``(B,)``."""
    dims = lattice_dims(phi)
    phi2 = phi * phi
    local = ((1 - 2 * lam) * phi2 + lam * phi2 * phi2).sum(dim=dims)
    return local - 2 * kappa * hopping(phi)


def force(phi: Tensor, kappa: float | Tensor, lam: float | Tensor) -> Tensor:
    """∂S/∂φ at every site, same shape as ``phi``."""
    return 2 * (1 - 2 * lam) * phi + 4 * lam * phi**3 - 2 * kappa * neighbour_sum(phi)


@dataclass(frozen=True)
class CouplingDerivatives:
    """∂S/∂κ and ∂S/∂λ per configuration (eq. 35); both independent of the couplings."""

    dkappa: Tensor
    dlam: Tensor


def coupling_derivatives(phi: Tensor) -> CouplingDerivatives:
    """Eq. (35): ∂S/∂κ = −2 Σ φ_x φ_{x+μ}, ∂S/∂λ = Σ (φ⁴ − 2φ²), each of shape ``(B,)``."""
    dims = lattice_dims(phi)
    phi2 = phi * phi
    return CouplingDerivatives(
        dkappa=-2 * hopping(phi),
        dlam=(phi2 * phi2 - 2 * phi2).sum(dim=dims),
    )

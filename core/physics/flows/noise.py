"""Zero-sum block noise N with learnable width σ_θ, paper eqs. (19)-(21).

Per 2^d block (n = 2^d sites, block view of :mod:`core.physics.flows.upsample`) the noise has
n − 1 free components ζ' = (ζ_1, ..., ζ_{n−1}) ~ N(0, Σ) with

    Σ = σ² (I_{n−1} − J_{n−1}/n)        (eq. 19; J = all-ones matrix)

and the last component fixed by the zero block sum, ζ_n = −Σ_{i<n} ζ_i (eq. 20).

**Equivalence with a projected i.i.d. vector.** Let ξ ~ N(0, σ² I_n) and
P = I_n − 1 1ᵀ/n (orthogonal projector onto zero block sum). Then ζ = Pξ = ξ − mean(ξ)
has zero sum and covariance σ² P. Its first n − 1 entries have covariance
σ² (P)_{ij} = σ² (δ_ij − 1/n), i, j < n — exactly Σ of eq. (19) — and ζ_n = −Σ_{i<n} ζ_i
by construction. So sampling is "draw n i.i.d. N(0, σ²), subtract the block mean";
differentiable in σ (reparametrisation ζ = σ·(ε − mean ε), ε ~ N(0, 1)).

**Density of the free components.** The eigenvalues of I_m − J_m/n (m = n − 1) are 1
(m − 1 times, vectors ⊥ 1) and 1 − m/n = 1/n (along 1), so det Σ = σ^{2m}/n, and by
Sherman-Morrison Σ⁻¹ = σ⁻² (I_m + J_m). Hence ζ'ᵀΣ⁻¹ζ' = (|ζ'|² + (Σ_i ζ'_i)²)/σ² =
Σ_{i=1}^{n} ζ_i²/σ² with ζ_n = −Σ ζ'_i, and per block

    log p(ζ'_B) = −(m/2) log 2π − m log σ + ½ log n − (|ζ'_B|² + (Σ ζ'_B)²)/(2σ²).

This is the normalised density of the n − 1 *coordinates* ζ' (Lebesgue measure on
R^{n−1}); the ½ log n term is what makes it differ from an isotropic density on the
zero-sum plane. :mod:`core.physics.flows.rg_flow` pairs it with the Jacobian of
(φ, ζ') ↦ Ψ taken in the same coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from core.physics.flows.upsample import BLOCK, block_size, from_blocks, to_blocks


@dataclass(frozen=True)
class NoiseSample:
    """ζ on the fine lattice (zero block sums) and log p_ζ(ζ') per configuration ``(B,)``."""

    zeta: Tensor
    log_prob: Tensor


class BlockNoise(nn.Module):
    """The noise layer of one level in d dimensions; σ_θ = exp(log_sigma)."""

    def __init__(self, dim: int, sigma: float = 1.0) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim={dim}: use d ≥ 1")
        if not sigma > 0:
            raise ValueError(f"sigma={sigma}: the noise width must be > 0")
        self.dim = dim
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    @property
    def sigma(self) -> Tensor:
        return self.log_sigma.exp()

    @torch.no_grad()
    def init_sigma(self, coarse: Tensor) -> float:
        """Set σ to the standard deviation of a coarse batch (Appendix C); returns it."""
        std = float(coarse.detach().to(torch.float64).std())
        if not (std > 0 and math.isfinite(std)):
            raise ValueError(f"coarse batch has standard deviation {std}: cannot set σ from it")
        self.log_sigma.fill_(math.log(std))
        return std

    def sample(
        self,
        coarse_shape: torch.Size | tuple[int, ...],
        generator: torch.Generator,
        coarse: Tensor | None = None,
    ) -> NoiseSample:
        """Draw ζ for coarse fields of shape ``(B, L, ..., L)``; ζ has the fine shape.
        ``coarse`` (the field φ) is ignored here;
        :mod:`core.physics.flows.conditional_noise` uses it."""
        if len(coarse_shape) != self.dim + 1:
            raise ValueError(f"coarse shape {tuple(coarse_shape)} is not (B, L^{self.dim})")
        n = block_size(self.dim)
        eps = torch.randn(
            (*coarse_shape, n),
            generator=generator,
            device=self.log_sigma.device,
            dtype=self.log_sigma.dtype,
        )
        blocks = self.sigma * (eps - eps.mean(dim=-1, keepdim=True))
        return NoiseSample(zeta=from_blocks(blocks), log_prob=self._log_prob_blocks(blocks))

    def log_prob(self, zeta: Tensor, coarse: Tensor | None = None) -> Tensor:
        """log p_ζ(ζ') per configuration from a fine-shaped ζ: ζ' = all but the last
        entry of each block; the last entry is ignored (it is −Σ ζ' for noise of this
        layer; for an arbitrary field only ζ' enters). ``coarse`` is ignored (see sample)."""
        return self._log_prob_blocks(to_blocks(zeta))

    def _log_prob_blocks(self, blocks: Tensor) -> Tensor:
        n = blocks.shape[-1]
        m = n - 1
        free = blocks[..., :-1]
        quad = free.square().sum(-1) + free.sum(-1).square()
        per_block_const = -0.5 * m * math.log(2 * math.pi) + 0.5 * math.log(n)
        n_blocks = math.prod(blocks.shape[1:-1])
        sum_dims = tuple(range(1, blocks.ndim - 1))
        return (
            -0.5 * quad.sum(sum_dims) * torch.exp(-2 * self.log_sigma)
            + n_blocks * (per_block_const - m * self.log_sigma)
        )

    def covariance(self) -> Tensor:
        """Σ of eq. (19), ``(n−1, n−1)``."""
        m = block_size(self.dim) - 1
        eye = torch.eye(m, dtype=self.log_sigma.dtype, device=self.log_sigma.device)
        return self.sigma.square() * (eye - 1.0 / BLOCK**self.dim)

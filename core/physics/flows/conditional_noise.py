"""Block noise conditioned on the coarse field: eqs. (19)-(21) with a per-block width and
a zero-sum mean taken from the coarse neighbourhood.

Per coarse site B (block of n = 2^d fine sites, free components ζ'_B = ζ_B[:n−1]):

    ζ'_B | φ ~ N(μ'_B(φ), σ_B(φ)² (I_{n−1} − J_{n−1}/n)),    ζ_{B,n} = −Σ_i ζ'_{B,i}
    log σ_B = log σ_θ + a_1 log(1 + φ_B²) + a_2 log(1 + (1/2d) Σ_{±μ} φ_{B±μ}²)
    μ_{B,o} = c Σ_μ (o_μ − ½) (φ_{B+μ} − φ_{B−μ}) / 4,    o ∈ {0, 1}^d the in-block offset

Both features of σ_B are even in φ and μ is odd, so p(ζ|φ) = p(−ζ|−φ) (Z2); both are
built from the coarse neighbours with weights shared by every direction and sign, so they
commute with coarse translations and the lattice reflections/permutations (which map the
fine blocks onto blocks and o_μ → 1 − o_μ together with μ → −μ). Σ_o (o_μ − ½) = 0, so μ
has zero block sum: ζ = μ + σ_B P ε (P the block-mean projector) still has zero block
sums, U† still inverts, and ζ − μ obeys eq. (20). c = 1 is the linear interpolation of
the coarse field to the fine sites; log(1 + x) keeps σ_B a power of (1 + φ²) rather than
an exponential of it. The density of the free coordinates is that of
:mod:`core.physics.flows.noise` with ζ' → ζ' − μ' and σ → σ_B, exactly normalised per block:

    log p(ζ'_B|φ) = −(m/2) log 2π − m log σ_B + ½ log n − (|r'_B|² + (Σ r'_B)²)/(2σ_B²),
    r' = ζ' − μ', m = n − 1.

Init a = 0, c = 0: identical to :class:`core.physics.flows.noise.BlockNoise` (same draws from the
generator, same σ). Parameters: ``log_sigma`` (), ``width_weight`` a (2,),
``mean_weight`` c ().
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn

from core.physics.flows.noise import BlockNoise, NoiseSample
from core.physics.flows.upsample import block_size, from_blocks, to_blocks


class ConditionalBlockNoise(BlockNoise):
    """Zero-sum block noise whose width and mean depend on the coarse field φ."""

    _offset_sign: Tensor

    def __init__(self, dim: int, sigma: float = 1.0) -> None:
        super().__init__(dim, sigma)
        self.width_weight = nn.Parameter(torch.zeros(2))
        self.mean_weight = nn.Parameter(torch.zeros(()))
        offsets = list(itertools.product([0, 1], repeat=dim))  # row-major, as to_blocks
        sign = torch.tensor(offsets, dtype=torch.get_default_dtype()).T - 0.5  # (d, n)
        self.register_buffer("_offset_sign", sign, persistent=False)

    def _check(self, coarse: Tensor | None) -> Tensor:
        if coarse is None:
            raise ValueError("conditional block noise needs the coarse field (coarse=φ)")
        if coarse.ndim != self.dim + 1:
            raise ValueError(f"coarse field {tuple(coarse.shape)} is not (B, L^{self.dim})")
        return coarse

    def block_log_sigma(self, coarse: Tensor) -> Tensor:
        """log σ_B per coarse site ``(B, L, ..., L)``."""
        sq = coarse.square()
        axes = range(1, coarse.ndim)
        shifted = [torch.roll(sq, k, dims=ax) for ax in axes for k in (1, -1)]
        mean_nn = torch.stack(shifted).mean(0)
        a = self.width_weight.to(coarse.dtype)
        log_sigma = self.log_sigma.to(coarse.dtype)
        return log_sigma + a[0] * torch.log1p(sq) + a[1] * torch.log1p(mean_nn)

    def block_mean(self, coarse: Tensor) -> Tensor:
        """μ ``(B, L, ..., L, n)`` in the block view; zero sum over the last axis."""
        grad = torch.stack(
            [(torch.roll(coarse, -1, dims=ax) - torch.roll(coarse, 1, dims=ax)) / 4
             for ax in range(1, coarse.ndim)],
            dim=-1,
        )  # fmt: skip
        return self.mean_weight.to(coarse.dtype) * (grad @ self._offset_sign.to(coarse.dtype))

    def sample(
        self,
        coarse_shape: torch.Size | tuple[int, ...],
        generator: torch.Generator,
        coarse: Tensor | None = None,
    ) -> NoiseSample:
        """ζ = μ(φ) + σ_B(φ)·(ε − mean ε) per block for the coarse field ``coarse``."""
        phi = self._check(coarse)
        if tuple(coarse_shape) != tuple(phi.shape):
            raise ValueError(f"coarse shape {tuple(coarse_shape)} != field {tuple(phi.shape)}")
        eps = torch.randn(
            (*coarse_shape, block_size(self.dim)),
            generator=generator,
            device=self.log_sigma.device,
            dtype=self.log_sigma.dtype,
        ).to(phi.dtype)
        log_s = self.block_log_sigma(phi)
        centred = eps - eps.mean(dim=-1, keepdim=True)
        blocks = self.block_mean(phi) + log_s.exp().unsqueeze(-1) * centred
        return NoiseSample(zeta=from_blocks(blocks), log_prob=self._conditional(blocks, phi))

    def log_prob(self, zeta: Tensor, coarse: Tensor | None = None) -> Tensor:
        """log p(ζ'|φ) per configuration (ζ' = all but the last entry of each block)."""
        phi = self._check(coarse)
        return self._conditional(to_blocks(zeta), phi)

    def _conditional(self, blocks: Tensor, coarse: Tensor) -> Tensor:
        n = blocks.shape[-1]
        m = n - 1
        free = (blocks - self.block_mean(coarse))[..., :-1]
        quad = free.square().sum(-1) + free.sum(-1).square()
        log_s = self.block_log_sigma(coarse)
        const = -0.5 * m * math.log(2 * math.pi) + 0.5 * math.log(n)
        per_block = -0.5 * quad * torch.exp(-2 * log_s) - m * log_s + const
        return per_block.reshape(per_block.shape[0], -1).sum(1)

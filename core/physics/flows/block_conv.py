"""The local field's sum over kernel taps as one convolution on the lattice of blocks, eq. (23).

The local field G_x = Σ_{y∈K(x)} Σ_f a_{c(x,y) f}(t) H_f(Ψ_y) ties its weights over the
symmetries of the upsampled field (core.physics.flows.vector_field): the class c(x, y)
depends on the offset δ = y − x only through s = δ ⊙ (1 − 2p), with p = x mod 2 the site's
parity inside its block. Write x = 2j + p and y = 2(j + Δ) + q (block j, neighbouring block
j + Δ, parities p, q ∈ {0, 1}^d), so δ = 2Δ + q − p. In the block view (to_blocks: the 2^d
sites of a block on a channel axis),

    G_{2j+p} = Σ_{f,q} Σ_Δ W_{p; f q Δ} H_f(Ψ_{2(j+Δ)+q}),
    W_{p; f q Δ} = a_{c(s) f}  if every |δ_μ| ≤ r (k = 2r + 1), else 0,

a periodic correlation on the lattice of blocks with F·2^d input channels (f, q), 2^d
output channels p and a (2R + 1)^d kernel, R = ⌈r/2⌉ (k = 2, the block itself: Δ = 0,
R = 0). It is the same linear map as the gather over the S·V taps of
:meth:`~core.physics.flows.vector_field.LocalVectorField` (agreement to rounding:
tests/physics/flows/test_block_conv.py), evaluated by one conv{1,2,3}d — the backend's
convolution kernels (oneDNN on CPU, cuDNN on CUDA) instead of an (B, S, V) array of taps.
The kernel is rebuilt from the C·F coefficients a_cf(t) at every evaluation by one
gather of (2^d)²·(2R+1)^d entries; gradients reach a_cf through it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from core.physics.flows.upsample import block_size, from_blocks, to_blocks

CONVOLUTIONS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@dataclass(frozen=True)
class BlockKernelPlan:
    """Which class sits at each (output parity p, input parity q, block offset Δ).

    ``index`` ``(2^d, 2^d, (2R+1)^d)`` holds the class of every tap, −1 where δ leaves the
    kernel window; ``reach`` is R; parities and offsets run in row-major order (the block
    view's order of in-block sites, core.physics.flows.upsample.to_blocks)."""

    dim: int
    reach: int
    index: Tensor

    @property
    def mask(self) -> Tensor:
        return self.index >= 0


def block_kernel_plan(dim: int, kernel_size: int,
                      offset_class: dict[tuple[int, ...], int]) -> BlockKernelPlan:
    """The plan of a kernel of size k (2 or odd) whose parity-relative offsets s map to the
    classes ``offset_class`` (vector_field.local_classes)."""
    if kernel_size == 2:
        reach, r = 0, None
    elif kernel_size % 2 == 1:
        r = (kernel_size - 1) // 2
        reach = (r + 1) // 2
    else:
        raise ValueError(f"kernel_size must be 2 or odd, got {kernel_size}")
    parities = list(itertools.product((0, 1), repeat=dim))
    blocks = list(itertools.product(range(-reach, reach + 1), repeat=dim))
    index = torch.full((len(parities), len(parities), len(blocks)), -1, dtype=torch.long)
    for i, p in enumerate(parities):
        for j, q in enumerate(parities):
            for m, big in enumerate(blocks):
                delta = [2 * big[mu] + q[mu] - p[mu] for mu in range(dim)]
                if r is not None and any(abs(d) > r for d in delta):
                    continue
                s = tuple(delta[mu] * (1 - 2 * p[mu]) for mu in range(dim))
                if s in offset_class:
                    index[i, j, m] = offset_class[s]
    return BlockKernelPlan(dim=dim, reach=reach, index=index)


def block_kernel(coeff: Tensor, plan: BlockKernelPlan) -> Tensor:
    """W ``(2^d, F·2^d, (2R+1)^d)`` from the class coefficients ``coeff`` ``(C, F)``."""
    index = plan.index.to(coeff.device)
    w = coeff[index.clamp(min=0)] * (index >= 0).unsqueeze(-1).to(coeff.dtype)  # (P, P, M, F)
    n = block_size(plan.dim)
    w = w.permute(0, 3, 1, 2).reshape(n, coeff.shape[1] * n, *([2 * plan.reach + 1] * plan.dim))
    return w


def to_block_state(field: Tensor) -> Tensor:
    """A field ``(B, L..)`` in the block layout ``(B, 2^d, L/2..)``: channel q is the
    sublattice of in-block parity q (row-major, as core.physics.flows.upsample.to_blocks)."""
    return to_blocks(field).movedim(-1, 1).contiguous()


def from_block_state(state: Tensor) -> Tensor:
    """Inverse of :func:`to_block_state`."""
    return from_blocks(state.movedim(1, -1))


def block_conv_state(features: Tensor, coeff: Tensor, plan: BlockKernelPlan) -> Tensor:
    """The tap sum on the block layout: ``features`` H ``(B, F, 2^d, L/2..)`` (channel
    (f, q) = f·2^d + q after a free reshape), ``coeff`` a ``(C, F)``; returns G
    ``(B, 2^d, L/2..)``."""
    x = features.reshape(features.shape[0], -1, *features.shape[3:])
    if plan.reach:
        x = F.pad(x, (plan.reach,) * (2 * plan.dim), mode="circular")
    return CONVOLUTIONS[plan.dim](x, block_kernel(coeff, plan))


def block_conv(features: Tensor, coeff: Tensor, plan: BlockKernelPlan) -> Tensor:
    """Σ_{y∈K(x)} Σ_f a_{c(x,y) f} H_f(Ψ_y) for ``features`` H ``(B, F, L..)`` on the
    lattice layout and ``coeff`` a ``(C, F)``; returns ``(B, L..)``."""
    batch, n_feat = features.shape[:2]
    blocks = to_block_state(features.reshape(batch * n_feat, *features.shape[2:]))
    blocks = blocks.reshape(batch, n_feat, *blocks.shape[1:])
    return from_block_state(block_conv_state(blocks, coeff, plan))

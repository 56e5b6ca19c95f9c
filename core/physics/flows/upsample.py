"""Naïve upsampling U and its left inverse U† (block average), paper eqs. (17)-(18).

For b = 2 every coarse site x of a ``(B, L, ..., L)`` batch becomes a 2^d block
B(x) of equal values on the ``(B, 2L, ..., 2L)`` lattice,

    ψ = U(φ):   ψ_y = φ_x  for y ∈ B(x),          U†(ψ)_x = 2^{-d} Σ_{y∈B(x)} ψ_y,

so U†∘U = id and U† annihilates any field with zero block sums (the noise of eq. 20).

The *block view* ``to_blocks`` reshapes a fine field to ``(B, L, ..., L, 2^d)``: the last
axis lists the sites of each block in row-major order of the in-block offsets
(0,..,0), (0,..,1), ..., (1,..,1). The noise (eqs. 19-21) uses this order: its free
components ζ' are entries 0..2^d−2, and the last entry (offset (1,..,1)) is fixed by the
zero block sum. ``from_blocks`` is the exact inverse reshape.

The volume factors of U (eq. 18: ½ log|det J_Uᵀ J_U| = ½ L^d log 2^d) are *not* used by
the exact density; see :mod:`core.physics.flows.rg_flow` for the square embedding
(φ, ζ') ↦ Ψ and its determinant.
"""

from __future__ import annotations

from torch import Tensor

BLOCK = 2
"""The upsampling factor b (the paper's b = 2)."""


def block_size(dim: int) -> int:
    """n = b^d, the number of fine sites per coarse site."""
    return BLOCK**dim


def upsample(phi: Tensor) -> Tensor:
    """U of eq. (17): ``(B, L, ..., L)`` → ``(B, 2L, ..., 2L)`` by block copy (any d)."""
    out = phi
    for axis in range(1, phi.ndim):
        out = out.repeat_interleave(BLOCK, dim=axis)
    return out


def to_blocks(fine: Tensor) -> Tensor:
    """``(B, 2L, ..., 2L)`` → ``(B, L, ..., L, 2^d)``: each block's sites on the last axis."""
    dim = fine.ndim - 1
    batch = fine.shape[0]
    coarse = [s // BLOCK for s in fine.shape[1:]]
    if any(c * BLOCK != s for c, s in zip(coarse, fine.shape[1:], strict=True)):
        raise ValueError(f"fine lattice shape {tuple(fine.shape[1:])} is not divisible by {BLOCK}")
    split: list[int] = [batch]
    for c in coarse:
        split += [c, BLOCK]
    x = fine.reshape(split)
    # axes: 0, (1, 2), (3, 4), ... -> batch, coarse axes 1,3,5..., offset axes 2,4,6...
    order = [0, *range(1, 2 * dim, 2), *range(2, 2 * dim + 1, 2)]
    return x.permute(order).reshape(batch, *coarse, BLOCK**dim)


def from_blocks(blocks: Tensor) -> Tensor:
    """Inverse of :func:`to_blocks`: ``(B, L, ..., L, 2^d)`` → ``(B, 2L, ..., 2L)``."""
    dim = blocks.ndim - 2
    batch = blocks.shape[0]
    coarse = list(blocks.shape[1:-1])
    if blocks.shape[-1] != BLOCK**dim:
        raise ValueError(f"last axis has {blocks.shape[-1]} entries, expected 2^{dim}")
    x = blocks.reshape(batch, *coarse, *([BLOCK] * dim))
    # axes: batch, coarse 1..dim, offsets dim+1..2dim -> interleave (c1, o1, c2, o2, ...)
    order = [0]
    for axis in range(dim):
        order += [1 + axis, 1 + dim + axis]
    return x.permute(order).reshape(batch, *[c * BLOCK for c in coarse])


def downsample(fine: Tensor) -> Tensor:
    """U† (eq. 18): block average ``(B, 2L, ..., 2L)`` → ``(B, L, ..., L)``."""
    return to_blocks(fine).mean(dim=-1)

"""U (block copy) and U† (block average), eqs. (17)-(18), for d = 1, 2, 3."""

from __future__ import annotations

import pytest
import torch

from core.physics.flows.upsample import block_size, downsample, from_blocks, to_blocks, upsample


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_upsample_copies_blocks_and_downsample_inverts(dim: int) -> None:
    g = torch.Generator().manual_seed(dim)
    phi = torch.randn((3, *([4] * dim)), generator=g)
    fine = upsample(phi)
    assert fine.shape == (3, *([8] * dim))
    blocks = to_blocks(fine)
    assert blocks.shape == (3, *([4] * dim), block_size(dim))
    # every block holds one value: the coarse site's
    assert torch.equal(blocks, phi.unsqueeze(-1).expand_as(blocks))
    assert torch.equal(downsample(fine), phi)
    assert torch.equal(from_blocks(blocks), fine)


def test_block_view_matches_explicit_2d_indices() -> None:
    fine = torch.arange(16.0).reshape(1, 4, 4)
    blocks = to_blocks(fine)
    # block (0, 1) covers rows 0-1, columns 2-3, listed in row-major offset order
    assert blocks[0, 0, 1].tolist() == [2.0, 3.0, 6.0, 7.0]
    assert blocks[0, 1, 0].tolist() == [8.0, 9.0, 12.0, 13.0]
    assert torch.equal(downsample(fine)[0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))


def test_downsample_is_adjoint_of_upsample_over_block_size() -> None:
    # U† = (UᵀU)⁻¹Uᵀ = Uᵀ/2^d: <U φ, ψ> = 2^d <φ, U† ψ>
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(2, 3, 3, generator=g)
    psi = torch.randn(2, 6, 6, generator=g)
    lhs = (upsample(phi) * psi).sum()
    rhs = 4 * (phi * downsample(psi)).sum()
    assert torch.allclose(lhs, rhs, atol=1e-12)


def test_odd_fine_lattice_refused() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        to_blocks(torch.zeros(1, 5, 4))

"""push_batch: about 2^18 sites per push, between 64 and 1024 configurations."""

from __future__ import annotations

import itertools

import pytest

from core.physics.flows.push_batch import MAX_PUSH, MIN_PUSH, SITES_PER_PUSH, push_batch


@pytest.mark.parametrize(("L", "expected"), [(4, 1024), (8, 1024), (16, 1024), (32, 256),
                                             (64, 64), (128, 64), (256, 64)])
def test_measured_batches_in_d2(L: int, expected: int) -> None:
    assert push_batch(L * L) == expected


def test_monotone_and_bounded() -> None:
    sizes = [push_batch(v) for v in range(1, 70_000, 97)]
    assert all(MIN_PUSH <= b <= MAX_PUSH for b in sizes)
    assert all(a >= b for a, b in itertools.pairwise(sizes))
    assert all(b * v <= SITES_PER_PUSH for v, b in zip(range(1, 70_000, 97), sizes, strict=True)
               if MIN_PUSH < b < MAX_PUSH)


def test_refuses_an_empty_lattice() -> None:
    with pytest.raises(ValueError, match="volume=0"):
        push_batch(0)

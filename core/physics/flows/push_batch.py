"""How many configurations one no-gradient push of the flow takes at a time.

A push's working set grows with batch × volume (the field's features at every site, the
RK stages); past the CPU's caches the time per configuration rises. Measured with
``bench/profile_step.py --compare-contract --clock cpu --push-batch B`` (one thread,
untrained k = 7 fields, CPU seconds per configuration):

| L | B = 64 | B = 256 | B = 1024 |
|---|---|---|---|
| 16 | 0.81 ms | 0.91 ms | 0.90 ms |
| 32 | 4.3 ms | 4.1 ms | 5.2 ms |
| 64 | 27 ms | 40 ms | 43 ms |

so a push holds about 2^18 sites, between 64 and 1024 configurations: 1024 at L ≤ 16,
256 at L = 32, 64 from L = 64 (1.3× and 1.6× cheaper per configuration there than 1024).
"""

from __future__ import annotations

SITES_PER_PUSH = 2**18
MIN_PUSH = 64
MAX_PUSH = 1024


def push_batch(volume: int) -> int:
    """Configurations per push for a fine lattice of ``volume`` sites: 2^18/V, clamped to
    [64, 1024]."""
    if volume < 1:
        raise ValueError(f"volume={volume}: a lattice has at least one site")
    return max(MIN_PUSH, min(MAX_PUSH, SITES_PER_PUSH // volume))

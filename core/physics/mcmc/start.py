"""Where exact Markov chains start (HMC, core.physics.mcmc.hmc; the cluster algorithm,
core.physics.mcmc.cluster).

Start rule (``start="auto"``): a constant field φ has the classical potential per site
(1 − 2λ − 2dκ)φ² + λφ⁴ (eq. 3), a double well iff 2dκ > 1 − 2λ. There the chains start
*ordered* — constant field at the classical minimum v² = (2dκ + 2λ − 1)/(2λ), random sign
per chain — so that no chain freezes into a domain-wall (stripe) state on large lattices
(DESIGN §3); otherwise from i.i.d. N(0, 1) fields. The mean-field line lies below the true
κ_c, so "ordered" is also chosen in part of the symmetric phase, where it costs only
thermalisation time.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor

Start = Literal["random", "ordered", "auto"]


def is_broken_mean_field(dim: int, kappa: float, lam: float) -> bool:
    """True iff the constant-field potential (1 − 2λ − 2dκ)φ² + λφ⁴ is a double well."""
    return 2 * dim * kappa > 1 - 2 * lam


def resolve_start(start: Start, dim: int, kappa: float, lam: float) -> Literal["random", "ordered"]:
    """"random" or "ordered": ``start`` itself, or for "auto" the rule of the module doc."""
    if start == "auto":
        return "ordered" if is_broken_mean_field(dim, kappa, lam) else "random"
    if start not in ("random", "ordered"):
        raise ValueError(f"start={start!r}: use 'random', 'ordered' or 'auto'")
    return start


def initial_field(start: Literal["random", "ordered"], *, dim: int, L: int, chains: int,
                  kappa: float, lam: float, generator: torch.Generator,
                  device: torch.device, dtype: torch.dtype) -> Tensor:
    """``(chains, L, ..., L)`` starting fields: i.i.d. N(0, 1), or constant ±v per chain
    with v the classical minimum (module doc; v = 1 where there is none)."""
    shape = (chains,) + (L,) * dim
    kw: dict[str, Any] = dict(generator=generator, device=device, dtype=dtype)
    if start == "random":
        return torch.randn(shape, **kw)
    v2 = (2 * dim * kappa + 2 * lam - 1) / (2 * lam) if lam > 0 else 0.0
    v = math.sqrt(v2) if v2 > 0 else 1.0
    sign = torch.randint(0, 2, (chains,), **kw).mul_(2).sub_(1)
    return (v * sign).reshape((-1,) + (1,) * dim).expand(shape).clone()


__all__ = ["Start", "initial_field", "is_broken_mean_field", "resolve_start"]

"""Per-configuration series of an ensemble: what a Monte Carlo analysis continues from.

For configurations shaped (T, C, L, …, L) (or (N, L, …, L), one chain) the primaries of
core.physics.lattice.observables — M, |M|, M², M⁴, the φ² density, S/V and F = G̃(p_min)
(from which χ, the Binder cumulant and ξ_2nd are derived) — and the coupling derivatives
∂S/∂κ = −2 Σ_{x,μ} φ_x φ_{x+μ} and ∂S/∂λ = Σ_x (φ_x⁴ − 2φ_x²) of eq. (35), each (T, C) float64.
With ∂S/∂c the ensemble reweights to nearby couplings, log w = −Δκ ∂S/∂κ − Δλ ∂S/∂λ
(the action is linear in κ and λ), and d log Z/dκ = −⟨∂S/∂κ⟩.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.physics.lattice.action import coupling_derivatives
from core.physics.lattice.observables import Measurements, measure

SERIES = ("magnetization", "abs_magnetization", "m2", "m4", "phi2", "action_density",
          "min_momentum_power", "dS_dkappa", "dS_dlam")
_CHUNK = 1024


def coupling_series(configs: Any, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """∂S/∂κ and ∂S/∂λ per configuration, shaped like the leading axes, in chunks."""
    x = configs if isinstance(configs, torch.Tensor) else torch.from_numpy(np.asarray(configs))
    lead = tuple(x.shape[: x.ndim - dim])
    flat = x.reshape(-1, *x.shape[x.ndim - dim:])
    dk, dl = [], []
    with torch.no_grad():
        for start in range(0, flat.shape[0], _CHUNK):
            d = coupling_derivatives(flat[start:start + _CHUNK].to(torch.float64))
            dk.append(d.dkappa.cpu())
            dl.append(d.dlam.cpu())
    return (torch.cat(dk).reshape(lead).numpy(), torch.cat(dl).reshape(lead).numpy())


def observable_series(configs: Any, *, dim: int, kappa: float, lam: float,
                      meas: Measurements | None = None) -> dict[str, np.ndarray]:
    """The :data:`SERIES` of ``configs`` (T, C, L^d) or (N, L^d), each (T, C) float64
    (``meas``: the primaries when already measured at (κ, λ))."""
    meas = meas or measure(configs, dim=dim, kappa=kappa, lam=lam)
    m = meas.magnetization
    dk, dl = coupling_series(configs, dim)
    t_len, chains = m.shape
    return {"magnetization": m, "abs_magnetization": np.abs(m), "m2": m * m, "m4": m**4,
            "phi2": meas.phi2, "action_density": meas.action_density,
            "min_momentum_power": meas.min_momentum_power,
            "dS_dkappa": dk.reshape(t_len, chains), "dS_dlam": dl.reshape(t_len, chains)}


def chain_major(series: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(T, C) series → (C·T,) with entry c·T + t = chain c at time t (the direct samplers'
    HDF5 layout of ``configs``)."""
    return {k: np.ascontiguousarray(v.T).reshape(-1) for k, v in series.items()}

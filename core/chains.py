"""Are independent Markov chains sampling the same distribution?

In the broken phase an HMC chain started from a random field can freeze into a
long-lived domain-wall (stripe) state on L ≥ 16 and bias every observable it feeds
(DESIGN §3). Chains are checked against each other: with per-chain means m_c and
Γ-method errors σ_c, the pooled mean m̄ = Σ m_c/σ_c² / Σ 1/σ_c² and

    χ² = Σ_c (m_c − m̄)² / σ_c²   with C − 1 degrees of freedom.

A p-value below ``alpha`` (default 10⁻³) or a chain with |z_c| above the Bonferroni
threshold marks the ensemble as inconsistent; the caller reports it, never hides it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from core.stats import as_float64, gamma_method


@dataclass(frozen=True)
class ChainCheck:
    """Consistency of C chains for one observable."""

    chains: int
    chi2_per_dof: float
    p_value: float
    max_abs_z: float
    worst_chain: int
    consistent: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chain_consistency(series: Any, *, alpha: float = 1e-3) -> ChainCheck:
    """Check the C columns of a ``(T, C)`` series against each other (see module doc)."""
    a = as_float64(series)
    if a.ndim != 2 or a.shape[1] < 2 or a.shape[0] < 4:
        raise ValueError(f"need a (T ≥ 4, C ≥ 2) series, got shape {a.shape}")
    chains = a.shape[1]
    means = a.mean(axis=0)
    errors = np.array([gamma_method(a[:, c]).error for c in range(chains)])
    floor = max(float(np.median(errors)), 1e-300) * 1e-3  # a frozen chain has σ_c ≈ 0
    errors = np.maximum(errors, floor)
    w = 1.0 / errors**2
    pooled = float((w * means).sum() / w.sum())
    z = (means - pooled) / errors
    chi2 = float((z**2).sum())
    p_value = float(sps.chi2.sf(chi2, chains - 1))
    z_limit = float(sps.norm.isf(alpha / (2 * chains)))
    worst = int(np.argmax(np.abs(z)))
    return ChainCheck(chains=chains, chi2_per_dof=chi2 / (chains - 1), p_value=p_value,
                      max_abs_z=float(abs(z[worst])), worst_chain=worst,
                      consistent=bool(p_value >= alpha and abs(z[worst]) <= z_limit))

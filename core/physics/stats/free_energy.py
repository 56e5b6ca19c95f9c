"""log Z and the free-energy density from a flow's importance weights (DESIGN §10).

The flow's density is q(φ) = q̃(φ)/Z_c with q̃ = e^{−S_c(φ_c)}·J(φ) (J: the levels' noise
densities and Jacobians, Z_c the coarse partition function). With the unnormalised weight
w̃ = e^{−S(φ)}/q̃(φ) on N fresh proposals φ_i ~ q,

    Z = E_q[e^{−S}/q] = Z_c · E_q[w̃],    log Z = log Z_c + log ⟨w̃⟩,     f = −log Z / V

(Nicoli et al., PRL 126, 032001 (2021), eq. 8, with the coarse normalisation kept apart).
log w̄ with w̄ = (1/N) Σ_i w̃_i is computed in float64 around max log w̃. Its errors:

- delta method (i.i.d.): σ² = Var(w̃)/(N w̄²) = (1/ESS − 1)/(N − 1) in terms of the
  ESS/N = (Σw̃)²/(N Σw̃²) of paper eq. 12 (sample variance with N − 1);
- binned jackknife along the proposals (core.physics.stats.gamma.jackknife), which also
  covers what correlation the coarse chains leave between proposals: the quoted error.

log w̄ is biased low, E[log w̄] − log E[w̃] ≈ −Var(w̃)/(2N⟨w̃⟩²) = −σ²/2 (second-order delta
method); ``log_z`` has it removed, ``log_z_raw`` has not, ``bias`` is the term itself.

Differences: with the action linear in (κ, λ), the same proposals give log Z at nearby
couplings c' = c + Δc by reweighting, w̃' = w̃ e^{−Δc·∂S/∂c}, and
log Z(c') − log Z(c) = log ⟨w̃'⟩ − log ⟨w̃⟩ (Z_c cancels). It is refused (NaN, with the
reason) when the reweighted ESS/N of w̃' is below the same threshold as a log Z.

Every estimate carries its :class:`Caveat` list: nothing untrustworthy is reported silently.
Codes: ``low_ess``, ``dominant_weight``, ``bias`` (the weights); ``coarse_missing``,
``coarse_error``, ``coarse_quadrature`` (log Z_c); ``ode_gap``, ``solver_shift`` (the flow's
solver); ``non_finite`` (set by the jobs when log-weights are unusable).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.physics.stats.gamma import as_float64, ess_fraction, jackknife

MIN_ESS = 0.05
"""ESS/N of the weights below which log ⟨w̃⟩ and its error are flagged: its variance is then
carried by a few proposals and the quoted error may be far too small."""
MIN_EFFECTIVE = 100.0
"""Effective proposals N·ESS/N below which log ⟨w̃⟩ is flagged, whatever ESS/N."""
MAX_WEIGHT_SHARE = 0.05
"""Share of Σw̃ above which a single proposal is flagged as carrying the estimate."""
JACKKNIFE_BINS = 50


@dataclass(frozen=True)
class Caveat:
    """Why an estimate cannot be trusted as quoted: a stable ``code`` and a message naming
    the figure and what would fix it."""

    code: str
    message: str


@dataclass(frozen=True)
class LogMeanWeight:
    """log w̄ (raw), its jackknife ``error`` and i.i.d. ``delta_error``, the bias
    −Var(w̃)/(2N w̄²), ESS/N of the weights, the largest weight's share of Σw̃, N."""

    value: float
    error: float
    delta_error: float
    bias: float
    ess: float
    max_weight_share: float
    n: int


@dataclass(frozen=True)
class CoarseLogZ:
    """What is known of log Z_c: value ± statistical error, the quadrature check
    (|I_2n − I_n|, converged; NaN/None where there is no quadrature) and its ``source``:
    thermodynamic integration, exact, or normalised (a baseline's prior: log Z_c = 0)."""

    value: float
    error: float
    quadrature_error: float = math.nan
    converged: bool | None = None
    source: str = "thermodynamic integration"


@dataclass(frozen=True)
class FreeEnergy:
    """log Z = log Z_c + log w̄ − bias ± √(σ_fine² + σ_coarse²), f = −log Z/V, the parts and
    the caveats (empty: nothing found that would make the error bar dishonest)."""

    log_z: float
    error: float
    log_z_raw: float
    bias: float
    fine_error: float
    f: float
    f_error: float
    volume: int
    coarse: CoarseLogZ
    weights: LogMeanWeight
    caveats: tuple[Caveat, ...]

    @property
    def trusted(self) -> bool:
        return not self.caveats

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["caveats"] = [asdict(c) for c in self.caveats]
        out["trusted"] = self.trusted
        return out


@dataclass(frozen=True)
class FreeEnergyDifference:
    """log Z(c') − log Z(c) by reweighting the same proposals, ± jackknife error; Δf =
    −Δlog Z/V; ESS/N of the reweighted weights and its ratio to the original's (the
    overlap); NaN values when refused (see ``caveats``)."""

    delta_log_z: float
    error: float
    delta_f: float
    delta_f_error: float
    ess: float
    overlap: float
    caveats: tuple[Caveat, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "caveats": [asdict(c) for c in self.caveats],
                "trusted": not self.caveats}


def _weights(log_w: Any) -> tuple[np.ndarray, float]:
    """w̃/max w̃ and log max w̃ from log-weights (−inf allowed: a zero weight)."""
    lw = as_float64(log_w).reshape(-1)
    if lw.size < 2:
        raise ValueError(f"need at least 2 log-weights, got {lw.size}")
    if np.any(np.isnan(lw) | (lw == np.inf)) or not np.any(np.isfinite(lw)):
        raise ValueError("log-weights must be finite or −inf, with at least one finite")
    top = float(lw.max())
    return np.exp(lw - top), top


def _bins(n: int, n_bins: int) -> int:
    return max(2, min(n_bins, n // 2))


def log_mean_weight(log_w: Any, n_bins: int = JACKKNIFE_BINS) -> LogMeanWeight:
    """log ⟨w̃⟩ from N log-weights (any order; bins of consecutive proposals)."""
    w, top = _weights(log_w)
    n = w.size
    mean = float(w.mean())
    var = float(w.var(ddof=1))
    delta2 = var / (n * mean * mean)
    jk = jackknife(lambda m: math.log(m), [w], n_bins=_bins(n, n_bins))
    return LogMeanWeight(value=top + math.log(mean), error=jk.error,
                         delta_error=math.sqrt(delta2), bias=-0.5 * delta2,
                         ess=ess_fraction(log_w),
                         max_weight_share=float(w.max() / w.sum()), n=n)


def weight_caveats(lw: LogMeanWeight, what: str = "log ⟨w̃⟩",
                   fix: str = "train the flow longer or sample more") -> list[Caveat]:
    """Caveats of a weight average: low ESS/N, few effective proposals, one dominant weight,
    a bias comparable to the error; ``fix`` ends the low-ESS message."""
    out = []
    if lw.ess < MIN_ESS or lw.ess * lw.n < MIN_EFFECTIVE:
        out.append(Caveat("low_ess", (
            f"{what}: ESS/N = {lw.ess:.3g} of N = {lw.n} fresh proposals ({lw.ess * lw.n:.0f} "
            f"effective; trusted from ESS/N ≥ {MIN_ESS:g} and ≥ {MIN_EFFECTIVE:g} effective): "
            f"the weight variance is carried by a few proposals and the error may be far too "
            f"small; {fix}")))
    if lw.max_weight_share > MAX_WEIGHT_SHARE:
        out.append(Caveat("dominant_weight", (
            f"{what}: one proposal carries {lw.max_weight_share:.1%} of Σw̃ (flagged above "
            f"{MAX_WEIGHT_SHARE:.0%}): the estimate hinges on it; sample more")))
    if abs(lw.bias) > 0.5 * max(lw.error, lw.delta_error):
        out.append(Caveat("bias", (
            f"{what}: the O(1/N) bias {lw.bias:.3g} is more than half the error "
            f"{max(lw.error, lw.delta_error):.3g}: the leading correction is applied but "
            "higher orders are not; sample more")))
    return out


def free_energy(log_w: Any, *, coarse: CoarseLogZ, volume: int,
                ode_gap: float | None = None, solver_shift: tuple[float, float] | None = None,
                n_bins: int = JACKKNIFE_BINS) -> FreeEnergy:
    """log Z, f and their caveats from the fresh proposals' log w̃ = −S − log q̃ (float64,
    log q̃ without −log Z_c) and what is known of log Z_c; ``ode_gap``: the flow's
    max |Δ log q| against a finer solve at the same input; ``solver_shift``: (Δ, σ_Δ), how
    far the finer solve moves log ⟨w̃⟩ itself (core.physics.exact.solver_shift), which also
    sees an offset between the discrete map and the tracked density."""
    lw = log_mean_weight(log_w, n_bins)
    caveats = weight_caveats(lw)
    fine_error = max(lw.error, lw.delta_error)
    if not math.isfinite(coarse.value) or not math.isfinite(coarse.error):
        caveats.append(Caveat("coarse_missing", (
            f"log Z_c is unknown ({coarse.source}): only log ⟨w̃⟩ is measured; log Z and f "
            "are NaN")))
    elif coarse.error > fine_error:
        caveats.append(Caveat("coarse_error", (
            f"log Z_c error {coarse.error:.3g} ({coarse.source}) exceeds the fine statistical "
            f"error {fine_error:.3g}: the coarse integration limits log Z; give it more "
            "samples per node")))
    if coarse.converged is False:
        caveats.append(Caveat("coarse_quadrature", (
            f"log Z_c quadrature not converged: doubling the Gauss–Legendre nodes moved it by "
            f"{coarse.quadrature_error:.3g}, more than 3σ of the statistical errors; use more "
            "nodes")))
    if ode_gap is not None and not (ode_gap <= fine_error):
        caveats.append(Caveat("ode_gap", (
            f"the flow's ODE-consistency figure max |Δ log q| = {ode_gap:.3g} exceeds the "
            f"error {fine_error:.3g}: log q itself is off by up to that much; use a finer "
            "solver")))
    if solver_shift is not None:
        shift, shift_err = solver_shift
        if not (abs(shift) <= max(0.5 * fine_error, 3 * shift_err)):
            caveats.append(Caveat("solver_shift", (
                f"pushing the same proposals with the finer reference solver moves log ⟨w̃⟩ by "
                f"{shift:.3g} ± {shift_err:.2g}, more than half the error {fine_error:.3g}: "
                "the solver's map and the tracked density disagree (log Z is off by about "
                "that, Metropolis is not); use more solver steps")))
    log_z_raw = coarse.value + lw.value
    log_z = log_z_raw - lw.bias
    error = math.hypot(fine_error, coarse.error)
    return FreeEnergy(log_z=log_z, error=error, log_z_raw=log_z_raw, bias=lw.bias,
                      fine_error=fine_error, f=-log_z / volume, f_error=error / volume,
                      volume=volume, coarse=coarse, weights=lw, caveats=tuple(caveats))


def reweighted_difference(log_w: Any, delta_log_w: Any, *, volume: int,
                          n_bins: int = JACKKNIFE_BINS) -> FreeEnergyDifference:
    """log Z(c') − log Z(c) from the same proposals: log ⟨w̃ e^δ⟩ − log ⟨w̃⟩ with
    δ_i = −(S_{c'} − S_c)(φ_i) (e.g. −Δκ ∂S/∂κ − Δλ ∂S/∂λ); refused below the ESS threshold
    of the reweighted weights."""
    lw = as_float64(log_w).reshape(-1)
    lw2 = lw + as_float64(delta_log_w).reshape(-1)
    w, _ = _weights(lw)
    w2, _ = _weights(lw2)
    n = w.size
    ess0, ess = ess_fraction(lw), ess_fraction(lw2)
    target = LogMeanWeight(value=math.nan, error=math.inf, delta_error=math.inf, bias=0.0,
                           ess=ess, max_weight_share=float(w2.max() / w2.sum()), n=n)
    caveats = [c for c in weight_caveats(
        target, "reweighted log ⟨w̃'⟩", "the target couplings are too far from the model's: "
        "sample a model trained there") if c.code != "bias"]
    if caveats:
        return FreeEnergyDifference(math.nan, math.nan, math.nan, math.nan, ess, ess / ess0,
                                    tuple(caveats))
    shift = float(lw2.max()) - float(lw.max())
    jk = jackknife(lambda a, b: math.log(b / a) + shift, [w, w2], n_bins=_bins(n, n_bins))
    return FreeEnergyDifference(delta_log_z=jk.mean, error=jk.error, delta_f=-jk.mean / volume,
                                delta_f_error=jk.error / volume, ess=ess, overlap=ess / ess0,
                                caveats=())

"""Free energy along a κ-scan: f(κ) at every point and the consistency of neighbours.

Every point's sample job estimates log Z (core.jobs.free_energy). Between neighbouring
points a < b at one λ,

    log Z_b − log Z_a = ∫_{κ_a}^{κ_b} dκ (−⟨∂S/∂κ⟩_κ)
                      ≈ (κ_b − κ_a)(g_a + g_b)/2,   g = −⟨∂S/∂κ⟩ measured on the chains

(DESIGN §10; the trapezoid's own error, −(Δκ)³ g''/12, is not included, so a coarse grid
near criticality can fail the check on its own). Each interval lists the slope of log Z,
the measured one and z = their difference over the combined error; where point a's
ensemble holds its proposals' weights, log Z_b − log Z_a is also estimated by reweighting
a's proposals to κ_b (core.physics.stats.free_energy; refused at low overlap).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from core.physics.io.pyerrors_json import PROPOSAL_LOG_W
from core.physics.stats.free_energy import reweighted_difference


class ScanPoint(Protocol):
    """What this module reads of a finished scan point (core.jobs.scan_job.PointResult)."""

    @property
    def kappa(self) -> float: ...
    @property
    def lam(self) -> float: ...
    @property
    def ensemble(self) -> Path: ...
    @property
    def free_energy(self) -> dict[str, Any] | None: ...
    @property
    def dS_dkappa(self) -> dict[str, float] | None: ...


def _finite(*xs: Any) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in xs)


def _reweighted(a: ScanPoint, b: ScanPoint, volume: int) -> dict[str, Any] | None:
    """log Z_b − log Z_a from a's proposals reweighted to b's couplings (None: no weights)."""
    try:
        with h5py.File(a.ensemble, "r") as h5:
            if PROPOSAL_LOG_W not in h5:
                return None
            lw = np.asarray(h5[PROPOSAL_LOG_W][()], dtype=np.float64)
            dk = np.asarray(h5["proposal_dS_dkappa"][()], dtype=np.float64)
            dl = np.asarray(h5["proposal_dS_dlam"][()], dtype=np.float64)
    except (OSError, KeyError):
        return None
    delta = -((b.kappa - a.kappa) * dk + (b.lam - a.lam) * dl)
    try:
        return reweighted_difference(lw, delta, volume=volume).as_dict()
    except ValueError:
        return None


def consistency(points: Sequence[ScanPoint], *, volume: int = 1,
                reweight: bool = True) -> list[dict[str, Any]]:
    """One row per pair of κ-neighbours at equal λ (module doc); ``reweight``: also from
    a's proposals reweighted to κ_b (reads a's ensemble file; Δf per ``volume`` sites)."""
    rows = []
    for lam in sorted({p.lam for p in points}):
        line = sorted((p for p in points if p.lam == lam), key=lambda p: p.kappa)
        for a, b in pairwise(line):
            fa, fb = a.free_energy or {}, b.free_energy or {}
            ga, gb = a.dS_dkappa or {}, b.dS_dkappa or {}
            dk = b.kappa - a.kappa
            if not (dk and _finite(fa.get("log_z"), fb.get("log_z"), ga.get("mean"),
                                   gb.get("mean"))):
                continue
            slope = (fb["log_z"] - fa["log_z"]) / dk
            slope_err = math.hypot(fa["error"], fb["error"]) / abs(dk)
            measured = -(ga["mean"] + gb["mean"]) / 2
            measured_err = math.hypot(ga["error"], gb["error"]) / 2
            err = math.hypot(slope_err, measured_err)
            rows.append({"lam": lam, "kappa_a": a.kappa, "kappa_b": b.kappa, "slope": slope,
                         "slope_error": slope_err, "measured": measured,
                         "measured_error": measured_err,
                         "z": (slope - measured) / err if err > 0 else math.nan,
                         "trusted": bool(fa.get("trusted") and fb.get("trusted")),
                         "reweighted": _reweighted(a, b, volume) if reweight else None})
    return rows


def plot_panels(ax_f: Any, ax_d: Any, points: Sequence[ScanPoint],
                rows: list[dict[str, Any]]) -> None:
    """(e) f(κ) ± error, one line per λ (open symbols: estimates with caveats);
    (f) d log Z/dκ from neighbouring log Z against the measured −⟨∂S/∂κ⟩."""
    for j, lam in enumerate(sorted({p.lam for p in points})):
        line = sorted((p for p in points if p.lam == lam and p.free_energy
                       and _finite(p.free_energy.get("f"))), key=lambda p: p.kappa)
        if not line:
            continue
        fe = [p.free_energy or {} for p in line]
        ax_f.errorbar([p.kappa for p in line], [f["f"] for f in fe],
                      yerr=[f["f_error"] for f in fe], marker="o", color=f"C{j}", capsize=3,
                      label=f"λ = {lam:g}")
        bad = [(p.kappa, f["f"]) for p, f in zip(line, fe, strict=True) if not f.get("trusted")]
        if bad:
            ax_f.plot(*zip(*bad, strict=True), "o", mfc="white", color=f"C{j}",
                      label="with caveats" if j == 0 else None)
        g = [(p.kappa, -(p.dS_dkappa or {})["mean"], (p.dS_dkappa or {})["error"])
             for p in line if p.dS_dkappa]
        if g:
            ax_d.errorbar(*zip(*g, strict=True), fmt="s", color=f"C{j}", mfc="none",
                          capsize=3, label=f"−⟨∂S/∂κ⟩, λ = {lam:g}")
        mids = [r for r in rows if r["lam"] == lam]
        if mids:
            ax_d.errorbar([(r["kappa_a"] + r["kappa_b"]) / 2 for r in mids],
                          [r["slope"] for r in mids], yerr=[r["slope_error"] for r in mids],
                          fmt="o", color=f"C{j}", capsize=3, label=f"Δlog Z/Δκ, λ = {lam:g}")
    ax_f.set(xlabel="κ", ylabel="f = −log Z / V", title="(e) free-energy density")
    ax_d.set(xlabel="κ", ylabel="d log Z/dκ", title="(f) Δlog Z/Δκ against −⟨∂S/∂κ⟩")
    for ax in (ax_f, ax_d):
        if ax.lines or ax.collections:
            ax.legend(fontsize=7)

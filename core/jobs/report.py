"""Side-by-side comparison of two ensembles' observables, and the figures people look at.

The agreement of two independent estimates a ± σ_a and b ± σ_b is reported as
z = (a − b)/√(σ_a² + σ_b²); |z| < 3 is "agrees within errors".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Comparison:
    name: str
    flow_mean: float
    flow_error: float
    hmc_mean: float
    hmc_error: float
    sigma: float  # (flow − hmc) / combined error


Summary = dict[str, dict[str, float]]


def compare(flow: Summary, hmc: Summary) -> list[Comparison]:
    """One row per observable present in both summaries."""
    rows = []
    for name in flow:
        if name not in hmc:
            continue
        a, b = flow[name], hmc[name]
        err = math.hypot(a["error"], b["error"])
        z = (a["mean"] - b["mean"]) / err if err > 0 else math.nan
        rows.append(Comparison(name, a["mean"], a["error"], b["mean"], b["error"], z))
    return rows


def format_table(rows: list[Comparison]) -> str:
    lines = [f"  {'observable':26s} {'flow + Metropolis':>22s} {'direct HMC':>22s} {'Δ/σ':>6s}"]
    for r in rows:
        lines.append(f"  {r.name:26s} {r.flow_mean:>11.5g} ± {r.flow_error:<8.2g} "
                     f"{r.hmc_mean:>11.5g} ± {r.hmc_error:<8.2g} {r.sigma:>6.2f}")
    return "\n".join(lines)


def plot_training(curve: list[dict[str, Any]], path: Path) -> Path:
    """ESS/N, loss and couplings against step, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [row["step"] for row in curve]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(steps, [row["ess"] for row in curve], lw=1)
    axes[0].set(xlabel="step", ylabel="ESS/N", ylim=(0, 1.02), title="effective sample size")
    axes[1].plot(steps, [row["loss"] for row in curve], lw=1)
    axes[1].set(xlabel="step", ylabel="reverse KL estimate", title="loss")
    for key in ("coarse_kappa", "fine_kappa", "coarse_lam", "fine_lam"):
        values = [row.get(key) for row in curve]
        if any(v is not None for v in values) and len(set(values)) > 1:
            axes[2].plot(steps, values, lw=1, label=key)
    axes[2].set(xlabel="step", ylabel="coupling", title="learned couplings")
    if axes[2].lines:
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_comparison(rows: list[Comparison], path: Path) -> Path:
    """Each observable normalised to the HMC value, with both error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        scale = abs(r.hmc_mean) if r.hmc_mean != 0 else 1.0
        ax.errorbar((r.hmc_mean - r.hmc_mean) / scale, i + 0.12, xerr=r.hmc_error / scale,
                    fmt="s", color="k", label="direct HMC" if i == 0 else None)
        ax.errorbar((r.flow_mean - r.hmc_mean) / scale, i - 0.12, xerr=r.flow_error / scale,
                    fmt="o", color="C1", label="flow + Metropolis" if i == 0 else None)
    ax.set_yticks(range(len(rows)), [f"{r.name} ({r.sigma:+.1f}σ)" for r in rows])
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlabel("relative deviation from direct HMC")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Server-rendered SVG charts (matplotlib's object API: no pyplot state, no GUI backend,
safe in the API's thread pool). Text stays text (``svg.fonttype = none``), ids are
deterministic (``svg.hashsalt``), and every chart carries a ``<title>`` for screen readers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

matplotlib.rcParams["svg.fonttype"] = "none"
matplotlib.rcParams["svg.hashsalt"] = "srflow-ui"


def _svg(fig: Figure, title: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Title": title})
    return buf.getvalue()


def message_chart(title: str, message: str) -> bytes:
    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, message, ha="center", va="center", color="0.35")
    return _svg(fig, title)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def training_curve(curve: Sequence[dict[str, Any]]) -> bytes:
    """ESS/N, loss and the learned couplings against the training step."""
    title = "Training curve: ESS/N, loss and couplings against step"
    points = [p for p in curve if isinstance(p, dict) and "step" in p]
    if not points:
        return message_chart(title, "no training curve recorded")
    step = np.array([_num(p["step"]) for p in points])
    fig = Figure(figsize=(7.5, 6.0), layout="constrained")
    ax_ess, ax_loss, ax_k = fig.subplots(3, 1, sharex=True)
    ax_ess.plot(step, [_num(p.get("ess")) for p in points], color="tab:blue")
    ax_ess.set_ylabel("ESS/N")
    ax_ess.set_ylim(bottom=0)
    ax_loss.plot(step, [_num(p.get("loss")) for p in points], color="tab:red")
    ax_loss.set_ylabel("loss")
    ax_lam = ax_k.twinx()  # κ and λ differ by orders of magnitude: one axis each
    for ax, key, label, style in ((ax_k, "coarse_kappa", "κ_L (coarse)", "-"),
                                  (ax_k, "fine_kappa", "κ (fine)", "--"),
                                  (ax_lam, "coarse_lam", "λ_L (coarse)", "-"),
                                  (ax_lam, "fine_lam", "λ (fine)", "--")):
        ys = [_num(p.get(key)) for p in points]
        if any(math.isfinite(y) for y in ys):
            ax.plot(step, ys, style, label=label,
                    color="tab:green" if ax is ax_k else "tab:purple")
    ax_k.set_ylabel("κ", color="tab:green")
    ax_lam.set_ylabel("λ", color="tab:purple")
    ax_k.set_xlabel("training step")
    lines = ax_k.lines + ax_lam.lines
    if lines:
        ax_k.legend(lines, [str(ln.get_label()) for ln in lines], loc="best",
                    fontsize="small")
    for ax in (ax_ess, ax_loss, ax_k):
        ax.grid(alpha=0.3)
    return _svg(fig, title)


def coupling_map(versions: Sequence[dict[str, Any]]) -> bytes:
    """ESS/N of the visible model versions over (κ, L), the best version per point."""
    title = "Coupling map: ESS/N of the visible models over κ and L"
    best: dict[tuple[float, int], float] = {}
    for v in versions:
        t, ess = v.get("theory") or {}, v.get("ess")
        if not isinstance(ess, int | float) or t.get("kappa") is None or t.get("L") is None:
            continue
        key = (float(t["kappa"]), int(t["L"]))
        best[key] = max(best.get(key, -1.0), float(ess))
    if not best:
        return message_chart(title, "no model versions with a recorded ESS/N match")
    kappa = np.array([k for k, _ in best])
    lat = np.array([n for _, n in best])
    ess = np.array(list(best.values()))
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    sc = ax.scatter(kappa, lat, c=ess, cmap="viridis", vmin=0.0, vmax=1.0, s=260, marker="s",
                    edgecolors="0.2")
    for k, n, e in zip(kappa, lat, ess, strict=True):
        ax.annotate(f"{e:.2f}", (k, n), textcoords="offset points", xytext=(0, 12),
                    ha="center", fontsize="small")
    ax.set_yscale("log", base=2)
    ax.set_yticks(sorted(set(lat.tolist())), [str(n) for n in sorted(set(lat.tolist()))])
    ax.minorticks_off()
    ax.set_xlabel("κ")
    ax.set_ylabel("L")
    ax.grid(alpha=0.3)
    fig.colorbar(sc, ax=ax, label="ESS/N")
    return _svg(fig, title)


def magnetisation_histogram(m: np.ndarray, n_total: int) -> bytes:
    """Histogram of the per-configuration magnetisation M = V⁻¹ Σ_x φ_x."""
    title = "Histogram of the magnetisation per configuration"
    if m.size == 0:
        return message_chart(title, "the ensemble has no configurations")
    fig = Figure(figsize=(6.5, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.hist(m, bins=min(60, max(10, int(math.sqrt(m.size)))), color="tab:blue", alpha=0.8)
    ax.set_xlabel("M = V⁻¹ Σ_x φ_x")
    ax.set_ylabel("configurations")
    shown = f"{m.size} of {n_total}" if m.size < n_total else f"all {n_total}"
    ax.set_title(f"{shown} configurations", fontsize="small")
    ax.grid(alpha=0.3)
    return _svg(fig, title)

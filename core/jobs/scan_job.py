"""Coupling scans: a grid of (κ, λ) at fixed (d, L), one flow per point.

For each point, in grid order: train (``run_train_job``), warm-started from the previous
point's flow (weights, σ_θ and learned couplings, core.physics.training.warm), then sample an exact
ensemble from it (``run_sample_job``: coarse HMC at the learned couplings → flow →
independence Metropolis, eq. (10)). The scan's record lists per point ESS/N, the learned
couplings {coarse, fine}, the Metropolis acceptance and the observables with Γ-method
errors, and draws the paper's fig. 4: ESS/N and κ_L − κ against κ, with ⟨|M|⟩ and
χ = V⟨M²⟩ against κ; where the points estimated log Z, two more panels: f(κ) = −log Z/V
and the slope of log Z between neighbours against the measured −⟨∂S/∂κ⟩
(core.jobs.scan_free_energy; the record's ``free_energy_consistency``).

Cancellation: a cancel stops the scan *after* the point in progress (it runs to its own
budget, ``max_minutes_per_point``); the finished points are kept. A server deadline
(``timed_out``/``preempted`` on the stop function, worker.resilience.Deadline) or a lost
job interrupts the point in progress at once; it is discarded, the finished ones kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.jobs.protocol import JobCancelled, JobResult, ProgressFn, ProgressReport, StopFn
from core.jobs.sample_job import run_sample_job
from core.jobs.scan_free_energy import consistency, plot_panels
from core.jobs.scan_spec import ScanSpec
from core.jobs.train_job import run_train_job
from core.physics.io.flow_files import load_flow, save_flow

Observables = dict[str, dict[str, float]]


@dataclass(frozen=True)
class PointResult:
    """One finished point: the flow in ``model_dir``, its ensemble in ``ensemble``."""

    index: int
    kappa: float
    lam: float
    ess: float  # ESS/N of the sampling run's proposals
    train_ess: float  # fresh-proposal ESS/N at the end of training
    couplings: dict[str, Any]
    acceptance: float
    observables: Observables
    model_dir: Path
    ensemble: Path
    warm_started: bool
    steps: int
    train_seconds: float
    sample_seconds: float
    free_energy: dict[str, Any] | None = None  # the sample job's (core.jobs.free_energy)
    dS_dkappa: dict[str, float] | None = None  # ⟨∂S/∂κ⟩ on the chain, Γ-method

    @property
    def kappa_shift(self) -> float:
        """κ_L − κ: learned coarse hopping minus the fine one (NaN without a coarse κ)."""
        coarse, fine = self.couplings.get("coarse"), self.couplings.get("fine")
        if not coarse or not fine:
            return math.nan
        return float(coarse["kappa"]) - float(fine["kappa"])

    def record(self, model: str, ensemble: str) -> dict[str, Any]:
        """The point as the scan record lists it (``model``/``ensemble``: how to find them:
        paths for a local scan, registry references for a service job)."""
        return {
            "kappa": self.kappa, "lam": self.lam, "ess": self.ess, "couplings": self.couplings,
            "acceptance": self.acceptance,
            "observables": {k: {f: float(v[f]) for f in ("mean", "error", "tau_int")}
                            for k, v in self.observables.items()},
            "model": model, "ensemble": ensemble, "train_ess": self.train_ess,
            "warm_started": self.warm_started, "steps": self.steps,
            "seconds": {"train": self.train_seconds, "sample": self.sample_seconds},
            "free_energy": _free_energy_record(self.free_energy), "dS_dkappa": self.dS_dkappa,
        }


@dataclass(frozen=True)
class ScanJobResult(JobResult):
    """``summary`` is the scan record; ``stopped``: complete | cancelled | interrupted |
    failed (a point after the first raised; ``summary["error"]`` says which and why)."""

    points: tuple[PointResult, ...] = ()
    plot: Path | None = None
    stopped: str = "complete"
    n_points: int = 0


class _AfterPoint:
    """The stop function the points see: a user's cancel is remembered but not passed on
    (the point finishes); deadlines and a lost job are passed on."""

    def __init__(self, outer: StopFn | None) -> None:
        self.outer = outer
        self.cancel_seen = False

    def urgent(self) -> bool:
        if self.outer is None or not self.outer():
            return False
        beat = getattr(self.outer, "beat", None)
        if (getattr(self.outer, "timed_out", False) or getattr(self.outer, "preempted", False)
                or getattr(beat, "lost", False)):
            return True
        self.cancel_seen = True
        return False

    def stop_before_next(self) -> bool:
        return self.urgent() or self.cancel_seen


def _relay(progress: ProgressFn | None, i: int, n: int, phase: str, kappa: float,
           lam: float) -> ProgressFn | None:
    if progress is None:
        return None

    def report(p: ProgressReport) -> None:
        metrics = {**p.metrics, "point": float(i + 1), "points": float(n), "kappa": kappa,
                   "lam": lam}
        progress(ProgressReport(p.step, p.total, f"point {i + 1}/{n} {phase}: {p.stage}", metrics))

    return report


def continued_parent(model_dir: Path, dk: float, dl: float, dest: Path) -> Path:
    """A copy of the flow in ``model_dir`` whose learned couplings are moved by (Δκ, Δλ),
    the step to the next grid point: the warm start carries the RG shift κ_L − κ over to
    the new κ instead of κ_L itself, which would lag a whole grid step behind (measured:
    Adam moves κ_L by ≤ coupling_lr ≈ 6·10⁻⁴ per step, so a 0.05 step costs ~80 steps)."""
    loaded = load_flow(model_dir)
    moved = {k: (v + (dk if k.endswith("kappa") else dl)) if math.isfinite(v) else v
             for k, v in loaded.couplings.items()}
    moved = {k: max(v, 0.0) if k.endswith("lam") else v for k, v in moved.items()}
    return save_flow(dest, loaded.flow, loaded.config, moved, loaded.metrics, overwrite=True)


def _free_energy_record(fe: dict[str, Any] | None) -> dict[str, Any] | None:
    """A point's log Z as the scan record lists it (the sample job keeps the whole block)."""
    if not fe:
        return None
    keys = ("log_z", "error", "f", "f_error", "trusted")
    return {**{k: fe.get(k) for k in keys},
            "caveats": [c.get("code") for c in fe.get("caveats") or []]}


def run_point(spec: ScanSpec, i: int, workdir: Path, init_dir: Path | None,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None,
              cache_dir: Path | None = None) -> PointResult:
    """Train and sample grid point ``i`` in ``workdir``, warm-started from the previous
    point's flow in ``init_dir`` (:func:`continued_parent`; recorded as the parent)."""
    kappa, lam = spec.grid()[i]
    n = len(spec.grid())
    tspec = spec.train_spec(i, init_from=None if init_dir is None else str(init_dir))
    parent = None
    if init_dir is not None:
        k0, l0 = spec.grid()[i - 1]
        parent = continued_parent(init_dir, kappa - k0, lam - l0, workdir / "parent")
    trained = run_train_job(tspec, workdir=workdir / "train", init_dir=parent,
                            progress=_relay(progress, i, n, "train", kappa, lam),
                            should_stop=should_stop)
    assert trained.model_dir is not None
    sampled = run_sample_job(spec.sample_spec(i, str(trained.model_dir)),
                             workdir=workdir / "sample",
                             progress=_relay(progress, i, n, "sample", kappa, lam),
                             should_stop=should_stop, cache_dir=cache_dir)
    assert sampled.ensemble is not None
    t, s = trained.summary, sampled.summary
    return PointResult(
        index=i, kappa=kappa, lam=lam, ess=float(s["ess"]), train_ess=float(t["ess"]),
        couplings=t["couplings"], acceptance=float(s["acceptance"]),
        observables=s["observables"], model_dir=trained.model_dir, ensemble=sampled.ensemble,
        warm_started=init_dir is not None, steps=int(t["steps"]),
        train_seconds=float(t["seconds"]), sample_seconds=float(s["seconds"]),
        free_energy=s.get("free_energy"), dS_dkappa=s.get("dS_dkappa"))


def run_scan_job(spec: ScanSpec, *, workdir: Path, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None,
                 cache_dir: Path | None = None) -> ScanJobResult:
    """Run the scan; files under ``workdir/point-NN/{train,sample}``, the plot in
    ``workdir/scan.png``. Returns the finished points even when stopped early."""
    grid = spec.grid()
    stop = _AfterPoint(should_stop)
    points: list[PointResult] = []
    stopped, error = "complete", None
    for i in range(len(grid)):
        if i > 0 and stop.stop_before_next():
            stopped = "cancelled"
            break
        prev = points[-1].model_dir if (points and spec.warm_start) else None
        try:
            point = run_point(spec, i, workdir / f"point-{i:02d}", prev, progress, stop.urgent,
                              cache_dir)
        except JobCancelled:
            stopped = "interrupted"
            break
        except Exception as exc:  # a failed point ends the scan; the finished ones stay
            if not points:
                raise
            stopped = "failed"
            error = (f"point {i + 1} (κ={grid[i][0]:g}, λ={grid[i][1]:g}): "
                     f"{type(exc).__name__}: {exc}")
            break
        points.append(point)
        if progress is not None:
            progress(ProgressReport(i + 1, len(grid), f"point {i + 1}/{len(grid)} done",
                              {"point": float(i + 1), "points": float(len(grid)),
                               "ess": point.ess, "acceptance": point.acceptance,
                               "kappa": point.kappa, "lam": point.lam}))
    if stopped == "complete" and stop.cancel_seen:
        stopped = "cancelled"  # the cancel came during the last point: nothing was skipped
    plot = plot_scan(points, workdir / "scan.png") if points else None
    records = [p.record(str(p.model_dir), str(p.ensemble)) for p in points]
    summary = {"points": records, "plot": None if plot is None else str(plot),
               "stopped": stopped, "error": error, "n_points": len(grid), "method": spec.method,
               "theory": {"dim": spec.dim, "L": spec.L},
               "free_energy_consistency": consistency(points, volume=spec.L**spec.dim)}
    return ScanJobResult("scan", summary, points=tuple(points), plot=plot, stopped=stopped,
                         n_points=len(grid))


def plot_scan(points: list[PointResult] | tuple[PointResult, ...], path: Path,
              reference: dict[float, Observables] | None = None) -> Path:
    """The paper's fig. 4 for this scan: (a) ESS/N, (b) κ_L − κ, (c) ⟨|M|⟩, (d) χ = V⟨M²⟩
    against κ, one line per λ; ``reference`` (κ → observables of direct sampling, at the
    scan's λ) adds those as black squares to (c) and (d). Where the points carry log Z, a
    third row: (e) f(κ), (f) Δlog Z/Δκ against −⟨∂S/∂κ⟩ (core.jobs.scan_free_energy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_f = any(p.free_energy for p in points)
    fig, axes = plt.subplots(3 if with_f else 2, 2, figsize=(9, 9.8 if with_f else 6.5),
                             sharex=True)
    (a, b), (c, d) = axes[0], axes[1]
    for j, lam in enumerate(sorted({p.lam for p in points})):
        row = sorted((p for p in points if p.lam == lam), key=lambda p: p.kappa)
        ks = [p.kappa for p in row]
        style = {"marker": "o", "color": f"C{j}", "label": f"λ = {lam:g}"}
        a.plot(ks, [p.ess for p in row], **style)
        b.plot(ks, [p.kappa_shift for p in row], **style)
        for ax, name in ((c, "abs_magnetization"), (d, "susceptibility")):
            ax.errorbar(ks, [p.observables[name]["mean"] for p in row],
                        yerr=[p.observables[name]["error"] for p in row], capsize=3,
                        **{**style, "label": f"flow, λ = {lam:g}"})
    if reference:
        ks = sorted(reference)
        for ax, name in ((c, "abs_magnetization"), (d, "susceptibility")):
            ax.errorbar(ks, [reference[k][name]["mean"] for k in ks],
                        yerr=[reference[k][name]["error"] for k in ks], fmt="s", color="k",
                        mfc="none", capsize=3, label="direct HMC")
    a.set(ylabel="ESS/N", ylim=(0, 1.02), title="(a) ESS/N of the proposals")
    b.axhline(0.0, color="0.6", lw=0.8)
    b.set(ylabel="κ_L − κ", title="(b) learned coarse κ_L − fine κ")
    c.set(xlabel="κ", ylabel="⟨|M|⟩", title="(c) ⟨|M|⟩")
    d.set(xlabel="κ", ylabel="χ = V⟨M²⟩", title="(d) χ")
    for ax in (a, b, c, d):
        ax.legend(fontsize=7)
    if with_f:
        plot_panels(axes[2][0], axes[2][1], points, consistency(points, reweight=False))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

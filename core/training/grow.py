"""Grow a super-resolving stack level by level instead of training every level at once.

A level T = F∘N∘U is local and block-equivariant, so its weights mean the same map on any
lattice (paper Appendix A). Growing trains the stack on the smallest lattice first and
adds one level per stage:

    stage 1:  coarse_L → 2·coarse_L          (one level, fresh)
    stage k:  coarse_L → 2^k·coarse_L         (levels 1..k−1 from stage k−1, level k a copy
                                               of level k−1; the lower levels train at
                                               lr·``lower_lr_factor``, 0 freezes them)

Each stage is an ordinary :func:`core.training.api.train` run warm-started from the stage
before (core.training.warm: weights level by level, σ_θ, and the learned couplings — κ_L
keeps moving as the stack deepens). Intermediate stages stop when their windowed ESS/N
stops rising (``plateau_window`` steps) or at ``stage_share`` of the remaining wall-time
budget, whichever comes first; the final stage gets the rest. A step on 2^k·coarse_L
costs ∝ its volume, so most of the learning happens where it is cheap.

Checkpoints: each stage trains in ``workdir/stage-L<size>`` (its own bit-exact resumable
checkpoint); a finished stage leaves ``stage.json``, and a rerun skips it. Cancel stops
inside the current stage (its checkpoint kept). A warm start (``init_dir``) whose stack
already has k levels skips the first k stages, so a trained L = 32 model grows into 64.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.specs import TrainSpec
from core.training.api import TrainOptions, TrainResult, train
from core.training.trainer import Progress

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class GrowConfig:
    """``lower_lr_factor``: lr of the inherited levels relative to the new one (paper's
    retraining uses 1/5); ``plateau_window``/``plateau_gain``: an intermediate stage ends
    when the mean training ESS/N over the last window exceeds the window before by no more
    than the gain; ``stage_share``: an intermediate stage's cap as a fraction of the
    remaining budget; ``stage_eval``: fresh proposals for an intermediate stage's ESS/N;
    ``stage_lr_factor``: lr of every stage after the first relative to the spec's (a stage
    that starts from a trained stack restarted at the full lr 10⁻² loses what the stack
    knew: L = 32 in 30 min reached fresh ESS/N 0.494 at 0.3 against 0.412 at 1,
    bench/scaling.py, one seed each)."""

    lower_lr_factor: float = 0.2
    plateau_window: int = 40
    plateau_gain: float = 0.005
    stage_share: float = 0.4
    stage_eval: int = 1024
    eval_reserve: float = 0.08  # of the final stage's budget, for its ≥ 4096-proposal ESS/N
    stage_lr_factor: float = 0.3  # lr of the stages after the first, relative to spec.lr
    stage_coupling_lr_factor: float = 1.0  # their coupling lr / coupling_lr; 0 holds κ_L


@dataclass(frozen=True)
class StageRecord:
    """One stage: lattice size, levels, fresh ESS/N, steps, seconds and why it stopped."""

    L: int
    levels: int
    ess: float
    steps: int
    seconds: float
    stopped: str
    coarse_kappa: float | None


def stage_sizes(spec: TrainSpec, parent_levels: int = 0) -> list[int]:
    """Fine lattice sizes of the stages still to train: 2^k·coarse_L for k > parent's."""
    return [spec.coarse_L * 2**k for k in range(max(parent_levels, 0) + 1, spec.levels + 1)]


def parent_levels(init_dir: Path | None) -> int:
    """Levels of a warm-start parent (0 without one); config.json only, no tensors."""
    if init_dir is None:
        return 0
    from core.io.flow_files import read_config

    return int(read_config(init_dir).levels or 0)


def should_grow(spec: TrainSpec, init_dir: Path | None = None) -> bool:
    """Grow by default for ir/uv stacks of ≥ 2 levels (``spec.grow`` opts out); a parent
    that already has every level is fine-tuned as a whole instead."""
    if not spec.grow or spec.method == "baseline" or spec.levels < 2:
        return False
    return parent_levels(init_dir) < spec.levels


def grow_config(spec: TrainSpec) -> GrowConfig:
    """The spec's grow knobs over the defaults."""
    cfg = GrowConfig()
    if spec.lower_lr_factor is not None:
        cfg = replace(cfg, lower_lr_factor=spec.lower_lr_factor)
    if spec.stage_lr_factor is not None:
        cfg = replace(cfg, stage_lr_factor=spec.stage_lr_factor)
    if spec.stage_coupling_lr_factor is not None:
        cfg = replace(cfg, stage_coupling_lr_factor=spec.stage_coupling_lr_factor)
    return cfg


def _stage_spec(spec: TrainSpec, size: int, minutes: float | None,
                parent: Path | None, lr_factor: float = 1.0) -> TrainSpec:
    """The stage's spec; it keeps the solver steps the previous stage's gap monitor
    refined to (a level trained with RK4 × 16 is integrated with RK4 × 16 above it) and
    scales the lr of a stage that starts from a trained stack by ``lr_factor``."""
    steps = spec.solver_steps
    config = None if parent is None else parent / "config.json"
    if config is not None and config.is_file():
        solver = json.loads(config.read_text()).get("solver") or {}
        if solver.get("method") == spec.solver:
            steps = max(steps, int(solver.get("steps", steps)))
    update: dict[str, Any] = {"L": size, "max_minutes": minutes, "solver_steps": steps}
    if parent is not None and lr_factor != 1.0:
        update["lr"] = (spec.lr or 0.01) * lr_factor
    return spec.model_copy(update=update)


def _budget(spec: TrainSpec, spent: float, final: bool, cfg: GrowConfig) -> float | None:
    """Minutes for the next stage: the rest for the final one, a share otherwise."""
    if spec.max_minutes is None:
        return None
    rest = max(spec.max_minutes - spent / 60.0, 0.05)
    return max(rest * (1.0 - cfg.eval_reserve) if final else rest * cfg.stage_share, 0.05)


def train_grown(spec: TrainSpec, *, workdir: Path, progress: Progress | None = None,
                should_stop: Callable[[], bool] | None = None,
                options: TrainOptions | None = None, init_dir: Path | None = None,
                grow: GrowConfig | None = None) -> TrainResult:
    """Train ``spec`` by growing the stack (module doc); the model lands in
    ``workdir/model`` like :func:`train`'s, its metrics carry the stages under ``grow``."""
    cfg = grow or grow_config(spec)
    opts = options or TrainOptions()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = stage_sizes(spec, parent_levels(init_dir))
    if not sizes:
        raise ValueError(f"init_from already has {spec.levels} levels: nothing to grow "
                         f"to L={spec.L}; train it with grow off or choose a larger L")
    records: list[StageRecord] = []
    spent = 0.0
    prev = init_dir
    result: TrainResult | None = None
    for index, size in enumerate(sizes):
        final = size == spec.L
        stage_dir = workdir / f"stage-L{size}"
        done = stage_dir / STAGE_FILE
        if done.is_file():  # finished in an earlier session: skip it
            record = StageRecord(**json.loads(done.read_text()))
            records.append(record)
            spent += record.seconds
            prev = stage_dir / "model"
            continue
        started = time.perf_counter()
        levels = int(math.log2(size // spec.coarse_L))
        stage_opts = replace(
            opts, lower_levels=0 if prev is None else levels - 1,
            lower_lr_factor=cfg.lower_lr_factor,
            plateau_window=None if final else cfg.plateau_window,
            plateau_gain=cfg.plateau_gain,
            eval_samples=opts.eval_samples if final else min(cfg.stage_eval,
                                                             opts.eval_samples))
        if prev is not None and cfg.stage_coupling_lr_factor != 1.0:
            base = opts.coupling_lr if opts.coupling_lr is not None else (spec.lr or 0.01)
            stage_opts = replace(stage_opts, coupling_lr=base * cfg.stage_coupling_lr_factor)
        stage_spec = _stage_spec(spec, size, _budget(spec, spent, final, cfg), prev,
                                 cfg.stage_lr_factor)
        offset = index * spec.steps
        total = len(sizes) * spec.steps

        def report(step: int, _total: int, metrics: dict[str, Any], offset: int = offset,
                   size: int = size, total: int = total) -> None:
            if progress is not None:
                progress(offset + step, total, {**metrics, "L": float(size)})

        result = train(stage_spec, workdir=stage_dir, progress=report, should_stop=should_stop,
                       options=stage_opts, init_dir=prev, record_init_dir=False)
        if result.stopped == "cancelled":
            return replace(result, steps=sum(r.steps for r in records) + result.steps)
        coarse = (result.couplings.get("coarse") or {}).get("kappa")
        record = StageRecord(L=size, levels=levels, ess=result.ess, steps=result.steps,
                             seconds=time.perf_counter() - started, stopped=result.stopped,
                             coarse_kappa=coarse)
        done.write_text(json.dumps(asdict(record)))
        records.append(record)
        spent += record.seconds
        prev = result.model_dir
    assert prev is not None
    return _finish(workdir, Path(prev), result, records)


def _stage_curves(workdir: Path, records: list[StageRecord]) -> list[dict[str, float]]:
    """(L, wall since the first stage began, training ESS/N) of every step of every stage."""
    rows: list[dict[str, float]] = []
    offset = 0.0
    for record in records:
        path = workdir / f"stage-L{record.L}" / "model" / "metrics.json"
        curve = json.loads(path.read_text()).get("curve", []) if path.is_file() else []
        rows += [{"L": record.L, "wall": offset + r["wall"], "ess": r["ess"]} for r in curve]
        offset += record.seconds
    return rows


def _finish(workdir: Path, last: Path, result: TrainResult | None,
            records: list[StageRecord]) -> TrainResult:
    """Move the final stage's model to ``workdir/model`` and record the stages."""
    target = workdir / "model"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(last, target)
    metrics_path = target / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["grow"] = [asdict(r) for r in records]
    metrics["seconds_total"] = sum(r.seconds for r in records)
    metrics["grow_curve"] = _stage_curves(workdir, records)
    metrics_path.write_text(json.dumps(metrics, indent=2, allow_nan=True))
    steps = sum(r.steps for r in records)
    seconds = sum(r.seconds for r in records)
    if result is None:  # every stage was already done: rebuild the result from the files
        from core.io.flow_files import load_flow

        loaded = load_flow(target)
        c = loaded.couplings
        return TrainResult(model_dir=target, method=loaded.config.method or "ir",
                           ess=float(metrics["ess"]), loss=float(metrics["loss"]),
                           couplings={"coarse": {"kappa": c["coarse_kappa"],
                                                 "lam": c["coarse_lam"]},
                                      "fine": {"kappa": c["fine_kappa"], "lam": c["fine_lam"]}},
                           steps=steps, seconds=seconds, gap=float(metrics["gap"]),
                           stopped=str(metrics["stopped"]))
    return replace(result, model_dir=target, steps=steps, seconds=seconds)


__all__ = ["GrowConfig", "StageRecord", "grow_config", "should_grow", "stage_sizes", "train_grown"]

"""Grow a super-resolving stack level by level instead of training every level at once.

A level T = F∘N∘U is local and block-equivariant, so its weights mean the same map on any
lattice (paper Appendix A). Growing trains the stack on the smallest lattice first and
adds one level per stage:

    stage 1:  coarse_L → 2·coarse_L          (one level, fresh)
    stage k:  coarse_L → 2^k·coarse_L         (levels 1..k−1 from stage k−1, level k a copy
                                               of level k−1; the lower levels train at
                                               lr·``plan.lower_lr_factor``, 0 freezes them)

Each stage is an ordinary :func:`core.physics.training.api.train` run of the plan with the
stage's lattice size (``dataclasses.replace``), warm-started from the stage before
(core.physics.training.warm: weights level by level, σ_θ, and the learned couplings — κ_L
keeps moving as the stack deepens). Every stage after the first runs at
lr·``plan.stage_lr_factor`` and coupling lr·``plan.stage_coupling_lr_factor``. Intermediate
stages stop when their windowed ESS/N stops rising (``plateau_window`` steps) or at
``stage_share`` of the remaining wall-time budget, whichever comes first; the final stage
gets the rest. A step on 2^k·coarse_L costs ∝ its volume, so most of the learning happens
where it is cheap.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.physics.control import ProgressHook, StopHook
from core.physics.io.flow_files import load_flow, read_config
from core.physics.training.api import TrainOptions, TrainResult, train
from core.physics.training.plan import TrainPlan

STAGE_FILE = "stage.json"


@dataclass(frozen=True)
class GrowConfig:
    """The library's growth schedule (the user's factors are the plan's):
    ``plateau_window``/``plateau_gain``: an intermediate stage ends when the mean training
    ESS/N over the last window exceeds the window before by no more than the gain;
    ``stage_share``: an intermediate stage's cap as a fraction of the remaining budget;
    ``stage_eval``: at most this many fresh proposals for an intermediate stage's ESS/N;
    ``eval_reserve``: the share of the final stage's budget kept for its ESS/N."""

    plateau_window: int = 40
    plateau_gain: float = 0.005
    stage_share: float = 0.4
    stage_eval: int = 1024
    eval_reserve: float = 0.08


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


def stage_sizes(plan: TrainPlan, parent_levels: int = 0) -> list[int]:
    """Fine lattice sizes of the stages still to train: 2^k·coarse_L for k > parent's."""
    return [plan.coarse_L * 2**k for k in range(max(parent_levels, 0) + 1, plan.levels + 1)]


def parent_levels(init_dir: Path | None) -> int:
    """Levels of a warm-start parent (0 without one); config.json only, no tensors."""
    if init_dir is None:
        return 0
    return int(read_config(init_dir).levels or 0)


def should_grow(plan: TrainPlan, init_dir: Path | None = None) -> bool:
    """Grow by default for ir/uv stacks of ≥ 2 levels (``plan.grow`` opts out); a parent
    that already has every level is fine-tuned as a whole instead."""
    if not plan.grow or plan.method == "baseline" or plan.levels < 2:
        return False
    return parent_levels(init_dir) < plan.levels


def _stage_plan(plan: TrainPlan, size: int, final: bool, minutes: float | None,
                parent: Path | None, cfg: GrowConfig) -> TrainPlan:
    """The stage's plan: lattice ``size``, wall-time cap ``minutes``, ≤ ``cfg.stage_eval``
    proposals for an intermediate ESS/N; it keeps the solver steps the previous stage's gap
    monitor refined to (a level trained with RK4 × 16 is integrated with RK4 × 16 above it)
    and, for a stage that starts from a trained stack, scales the lr by
    ``stage_lr_factor`` and the coupling lr by ``stage_coupling_lr_factor``."""
    steps = plan.solver_steps
    config = None if parent is None else parent / "config.json"
    if config is not None and config.is_file():
        solver = json.loads(config.read_text()).get("solver") or {}
        if solver.get("method") == plan.solver:
            steps = max(steps, int(solver.get("steps", steps)))
    stage = replace(plan, L=size, max_minutes=minutes, solver_steps=steps,
                    eval_samples=plan.eval_samples if final else min(cfg.stage_eval,
                                                                     plan.eval_samples))
    if parent is not None and plan.stage_lr_factor != 1.0:
        stage = replace(stage, lr=plan.lr * plan.stage_lr_factor)
    if parent is not None and plan.stage_coupling_lr_factor != 1.0:
        stage = replace(stage, coupling_lr=plan.coupling_lr * plan.stage_coupling_lr_factor)
    return stage


def _budget(plan: TrainPlan, spent: float, final: bool, cfg: GrowConfig) -> float | None:
    """Minutes for the next stage: the rest for the final one, a share otherwise."""
    if plan.max_minutes is None:
        return None
    rest = max(plan.max_minutes - spent / 60.0, 0.05)
    return max(rest * (1.0 - cfg.eval_reserve) if final else rest * cfg.stage_share, 0.05)


def train_grown(plan: TrainPlan, *, workdir: Path, progress: ProgressHook | None = None,
                should_stop: StopHook | None = None,
                options: TrainOptions | None = None, init_dir: Path | None = None,
                grow: GrowConfig | None = None) -> TrainResult:
    """Train ``plan`` by growing the stack (module doc); the model lands in
    ``workdir/model`` like :func:`train`'s, its metrics carry the stages under ``grow``."""
    cfg = grow or GrowConfig()
    opts = options or TrainOptions()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = stage_sizes(plan, parent_levels(init_dir))
    if not sizes:
        raise ValueError(f"init_from already has {plan.levels} levels: nothing to grow "
                         f"to L={plan.L}; train it with grow off or choose a larger L")
    records: list[StageRecord] = []
    spent = 0.0
    prev = init_dir
    result: TrainResult | None = None
    for index, size in enumerate(sizes):
        final = size == plan.L
        stage_dir = workdir / f"stage-L{size}"
        done = stage_dir / STAGE_FILE
        if done.is_file():  # finished in an earlier run: skip it
            record = StageRecord(**json.loads(done.read_text()))
            records.append(record)
            spent += record.seconds
            prev = stage_dir / "model"
            continue
        started = time.perf_counter()
        levels = int(math.log2(size // plan.coarse_L))
        stage_opts = replace(
            opts, lower_levels=0 if prev is None else levels - 1,
            plateau_window=None if final else cfg.plateau_window,
            plateau_gain=cfg.plateau_gain)
        stage_plan = _stage_plan(plan, size, final, _budget(plan, spent, final, cfg), prev, cfg)
        offset = index * plan.steps
        total = len(sizes) * plan.steps

        def report(step: int, _total: int, metrics: dict[str, Any], offset: int = offset,
                   size: int = size, total: int = total) -> None:
            if progress is not None:
                progress(offset + step, total, {**metrics, "L": float(size)})

        result = train(stage_plan, workdir=stage_dir, progress=report, should_stop=should_stop,
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


__all__ = ["GrowConfig", "StageRecord", "parent_levels", "should_grow", "stage_sizes",
           "train_grown"]

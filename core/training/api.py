"""The one training entry the pipeline calls: ``train(spec, workdir=...) -> TrainResult``.

Builds the flow from the spec (core.flows.rg_flow.build_flow), the couplings (IR: coarse κ
learns from the fine value; UV: fine κ learns from the coarse value; ``learn_lam`` adds λ),
the coarse source (IR: differentiable Langevin; UV: HMC) and runs the Trainer with
checkpoints in ``workdir/checkpoint.pt`` (resumed automatically). The model is saved to
``workdir/model`` with core.io.flow_files.save_flow; ``metrics.json`` holds the curve.
The reported ESS/N is measured after training on ≥ 4096 fresh proposals whose coarse fields
come from exact HMC at the learned coarse couplings (not the running training average).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from core.flows.config import FlowConfig, TheoryConfig
from core.flows.gap import SolverGapError, measure_gap, solver_of
from core.flows.rg_flow import build_flow
from core.lattice.couplings import Couplings
from core.samplers.hmc import SamplingCancelled, run_hmc
from core.specs import TrainSpec, default_kernel_size
from core.training.couplings import LearnableCouplings
from core.training.ir import IRConfig, IRSource
from core.training.logz import LogZConfig
from core.training.loss import ess_fraction
from core.training.problem import Matching
from core.training.trainer import Progress, Trainer, TrainerConfig
from core.training.uv import UVConfig, UVSource
from core.training.warm import (
    WarmStart,
    apply_warm_start,
    flat_couplings,
    inherit_kernel,
    load_warm_start,
)

GENERATORS = ("flow", "sampler", "logz", "gap", "init")


@dataclass(frozen=True)
class TrainOptions:
    """Knobs beyond TrainSpec (defaults: paper / measured). ``kinetic_weight`` λ_K of the
    kinetic-energy regulariser; ``langevin_therm`` IR thermalisation steps (Appendix C:
    5·10⁴); ``eval_samples`` fresh proposals for the final ESS/N; ``coupling_lr`` the Adam
    learning rate of the learnable couplings (None: the flow's lr). Adam moves every
    parameter by ≈ lr per step whatever its gradient, so at lr 0.01 κ jumps by 0.01 per step
    — comparable to the distance to criticality — and jitters without a trend (measured at
    L = 8, κ = 0.25); 1e-3 lets κ_L drift smoothly (docs/training.md)."""

    kinetic_weight: float = 0.05  # λ_K: keeps k = 3, D = 10, RK4-8 honest (docs/training.md)
    coupling_lr: float | None = 1e-3
    langevin_therm: int = 50_000
    langevin_between: int = 500
    logz: LogZConfig = field(default_factory=LogZConfig)
    gap_every: int = 10
    gap_threshold: float = 0.5
    gap_refine_at: float | None = 0.1  # past it RK4 doubles its steps (trainer, measured)
    max_solver_steps: int = 64
    checkpoint_every: int = 50
    checkpoint_minutes: float = 3.0
    eval_samples: int = 4096  # the final ESS/N uses ≥ 4096 by default; tests use fewer
    uv_between: int = 2
    lower_levels: int = 0  # grown stacks (core.training.grow): levels trained at a reduced lr
    lower_lr_factor: float = 1.0
    plateau_window: int | None = None
    plateau_gain: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    """``couplings`` = {"coarse": {kappa, lam}, "fine": {kappa, lam}} (baseline: coarse None);
    ``ess`` on fresh proposals; ``loss`` the D^(I) estimate −mean log w on them; ``gap`` the
    final solver gap max |Δ log q| (nats); ``stopped`` why the loop ended."""

    model_dir: Path
    method: str
    ess: float
    loss: float
    couplings: dict[str, dict[str, float] | None]
    steps: int
    seconds: float
    gap: float
    stopped: str


def with_spec_overrides(opts: TrainOptions, spec: TrainSpec) -> TrainOptions:
    """The spec's optional training knobs (None = keep ``opts``) win over ``opts``."""
    fields = ("kinetic_weight", "coupling_lr", "langevin_therm", "eval_samples")
    changes = {k: getattr(spec, k) for k in fields if getattr(spec, k, None) is not None}
    return replace(opts, **changes)


def flow_config(spec: TrainSpec, parent: str | None = None) -> FlowConfig:
    baseline = spec.method == "baseline"
    return FlowConfig(
        kind="baseline" if baseline else "super_resolving", dim=spec.dim,
        coarse_L=None if baseline else spec.coarse_L, fine_L=spec.L, levels=spec.levels,
        kernel_size=None if baseline else (
            spec.kernel_size or default_kernel_size(spec.dim, spec.coarse_L)),
        n_freq=spec.n_freq or (30 if baseline else 11), n_time=spec.n_time,
        bond_freq=spec.bond_freq, bond_time=spec.bond_time,
        solver={"method": spec.solver, "steps": spec.solver_steps}, dtype=spec.dtype,
        field=spec.field, base=spec.base,
        theory=TheoryConfig(kappa=spec.kappa, lam=spec.lam), method=spec.method, seed=spec.seed,
        parent=parent if parent is not None else spec.init_from)


def _couplings(spec: TrainSpec) -> tuple[LearnableCouplings, LearnableCouplings]:
    c = Couplings(spec.kappa, spec.lam)
    learn_coarse = spec.method == "ir"
    learn_fine = spec.method == "uv"
    coarse = LearnableCouplings(c, learn_kappa=learn_coarse,
                                learn_lam=learn_coarse and spec.learn_lam)
    fine = LearnableCouplings(c, learn_kappa=learn_fine, learn_lam=learn_fine and spec.learn_lam)
    return coarse, fine


def build_problem(spec: TrainSpec, opts: TrainOptions, gens: dict[str, torch.Generator],
                  init: WarmStart | None = None) -> tuple[Matching, FlowConfig]:
    # the registry reference (spec.init_from) names the parent; a bare directory only when
    # there is none (CLI use), so no worker scratch path travels inside config.json
    recorded = None if init is None else (init.parent or None)
    config = flow_config(spec, parent=spec.init_from or recorded)
    flow = build_flow(config)
    dtype = torch.float32 if spec.dtype == "float32" else torch.float64
    coarse, fine = _couplings(spec)
    if init is not None:
        apply_warm_start(init, flow, coarse, fine)
    flow = flow.to(spec.device)
    source: IRSource | UVSource | None = None
    if spec.method == "ir":
        source = IRSource(dim=spec.dim, coarse_L=spec.coarse_L, batch=spec.batch, coarse=coarse,
                          generator=gens["sampler"], logz_generator=gens["logz"], dtype=dtype,
                          device=spec.device,
                          config=IRConfig(n_therm=opts.langevin_therm,
                                          n_between=opts.langevin_between, logz=opts.logz))
    elif spec.method == "uv":
        source = UVSource(dim=spec.dim, coarse_L=spec.coarse_L, fine_L=spec.L, batch=spec.batch,
                          coarse=coarse.values(), fine=fine, generator=gens["sampler"],
                          logz_generator=gens["logz"], dtype=dtype, device=spec.device,
                          config=UVConfig(n_between=opts.uv_between, logz=opts.logz))
    problem = Matching(flow, coarse, fine, source, gens["flow"],
                       kinetic_weight=opts.kinetic_weight, baseline_batch=spec.batch)
    return problem, config


def initialise_sigma(problem: Matching, gen: torch.Generator) -> None:
    """Appendix C: σ_θ of each level = std of the configurations entering it."""
    if problem.source is None:
        return
    with torch.no_grad():
        phi = problem.source.draw().detach()
    problem.flow.init_sigma(phi, gen)  # type: ignore[operator]


@dataclass(frozen=True)
class Evaluation:
    ess: float
    loss: float
    gap: float
    n: int


def _checked(chunks: Any, should_stop: Callable[[], bool] | None) -> Any:
    """The chunks, asking ``should_stop`` before each (SamplingCancelled when it says so)."""
    for i, chunk in enumerate(chunks):
        if should_stop is not None and should_stop():
            raise SamplingCancelled(f"the final evaluation stopped before chunk {i + 1}")
        yield chunk


def evaluate(problem: Matching, spec: TrainSpec, n: int, gen: torch.Generator) -> Evaluation:
    """ESS/N and D^(I) on n fresh proposals (coarse fields from exact HMC) and the gap.
    ``problem.should_stop`` is asked between HMC trajectories and between chunks of 1024
    proposals: SamplingCancelled when it answers True."""
    flow: Any = problem.flow
    p = next(flow.parameters())
    stop = problem.should_stop
    with torch.no_grad():
        if problem.source is None:
            log_w = torch.cat([-_fine_action(problem, out.phi) - out.log_q.double()
                               for out in (flow(min(1024, n - i), gen)
                                           for i in _checked(range(0, n, 1024), stop))])
            gap = problem.gap(torch.empty(64), gen).log_q
        else:
            c = problem.coarse.values()
            hmc = run_hmc(dim=spec.dim, L=spec.coarse_L, kappa=c.kappa, lam=c.lam, n_samples=n,
                          chains=64, generator=gen, n_therm=200, device=spec.device,
                          should_stop=stop)
            phi_c = hmc.configs.reshape((-1, *hmc.configs.shape[2:]))[:n]
            phi_c = phi_c.to(device=p.device, dtype=p.dtype)
            log_w = torch.cat([problem.log_w(problem.push(x, generator=gen))
                               for x in _checked(phi_c.split(1024), stop)])
            gap = measure_gap(flow, phi_c[:64], gen).log_q
    return Evaluation(ess=ess_fraction(log_w), loss=float(-log_w.mean()), gap=gap,
                      n=int(log_w.numel()))


def _fine_action(problem: Matching, phi: torch.Tensor) -> torch.Tensor:
    from core.lattice.action import action

    return action(phi.double(), problem.fine.kappa, problem.fine.lam)


def train(spec: TrainSpec, *, workdir: Path, progress: Progress | None = None,
          should_stop: Callable[[], bool] | None = None,
          options: TrainOptions | None = None, init_dir: Path | None = None,
          record_init_dir: bool = True) -> TrainResult:
    """Train (or resume) the flow the spec describes; save it to ``workdir/model``.

    ``init_dir``: a parent model (core.io.flow_files) whose level weights, σ_θ and learned
    couplings seed this run (core.training.warm); the saved config records it as parent
    (``record_init_dir=False``: only ``spec.init_from`` is recorded — a grown stack's
    intermediate stages are scratch directories, not parents)."""
    from core.io.flow_files import save_flow

    spec = inherit_kernel(spec, init_dir)
    opts = with_spec_overrides(options or TrainOptions(), spec)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    gens = {k: torch.Generator(device=spec.device).manual_seed(spec.seed * 7919 + i)
            for i, k in enumerate(GENERATORS)}
    init = load_warm_start(Path(init_dir), spec) if init_dir is not None else None
    if init is not None and not record_init_dir:
        init.parent = spec.init_from or ""
    problem, config = build_problem(spec, opts, gens, init)
    problem.set_should_stop(should_stop)  # thermalisation and evaluation too (issue 12)
    lr = spec.lr if spec.lr is not None else (5e-3 if spec.method == "baseline" else 0.01)
    tcfg = TrainerConfig(steps=spec.steps, lr=lr, lr_decay=spec.lr_decay,
                         max_minutes=spec.max_minutes, target_ess=spec.target_ess,
                         gap_every=opts.gap_every, gap_threshold=opts.gap_threshold,
                         gap_refine_at=opts.gap_refine_at,
                         max_solver_steps=opts.max_solver_steps,
                         checkpoint_every=opts.checkpoint_every,
                         checkpoint_minutes=opts.checkpoint_minutes,
                         coupling_lr=opts.coupling_lr, lower_levels=opts.lower_levels,
                         lower_lr_factor=opts.lower_lr_factor,
                         plateau_window=opts.plateau_window, plateau_gain=opts.plateau_gain)
    ckpt = workdir / "checkpoint.pt"
    trainer = Trainer(problem, tcfg, gens, checkpoint=ckpt, progress=progress,
                      should_stop=should_stop)
    if ckpt.exists():
        trainer.load_checkpoint(ckpt)
    elif init is None:  # a warm start keeps the parent's trained σ_θ
        initialise_sigma(problem, gens["init"])
    try:
        loop = trainer.run()
    except SolverGapError:
        (workdir / "curve.json").write_text(json.dumps([asdict(r) for r in trainer.curve]))
        raise
    if loop.stopped == "cancelled":  # checkpoint written by the loop; no evaluation, no model
        return TrainResult(model_dir=workdir / "model", method=spec.method, ess=math.nan,
                           loss=math.nan, couplings={}, steps=loop.steps, seconds=loop.seconds,
                           gap=math.nan, stopped=loop.stopped)
    # the solver the monitor may have refined is part of the model (config.json)
    config = config.model_copy(update={"solver": solver_of(problem.flow).to_dict()})
    ev = evaluate(problem, spec, opts.eval_samples, gens["init"])
    couplings: dict[str, dict[str, float] | None] = {
        "coarse": None if spec.method == "baseline" else problem.coarse.as_dict(),
        "fine": problem.fine.as_dict()}
    metrics = {"ess": ev.ess, "loss": ev.loss, "gap": ev.gap, "steps": loop.steps,
               "stopped": loop.stopped, "seconds": loop.seconds, "eval_samples": ev.n,
               "curve": [asdict(r) for r in loop.curve], "solver": config.solver,
               "kinetic_weight": opts.kinetic_weight, "coupling_lr": opts.coupling_lr,
               "lr": lr, "batch": spec.batch}
    model_dir = workdir / "model"
    save_flow(model_dir, problem.flow.cpu(), config,
              flat_couplings(problem.coarse.values(), problem.fine.values()), metrics,
              overwrite=True)
    return TrainResult(model_dir=model_dir, method=spec.method, ess=ev.ess, loss=ev.loss,
                       couplings=couplings, steps=loop.steps, seconds=loop.seconds,
                       gap=ev.gap, stopped=loop.stopped)


__all__ = ["TrainOptions", "TrainResult", "train"]

"""The one training entry the job layer calls: ``train(plan, workdir=...) -> TrainResult``.

Builds the flow a :class:`~core.physics.training.plan.TrainPlan` describes
(core.physics.flows.rg_flow.build_flow), the couplings (IR: coarse κ learns from the fine
value; UV: fine κ learns from the coarse value; ``learn_lam`` adds λ), the coarse source (IR:
differentiable Langevin; UV: HMC) and runs the Trainer with checkpoints in
``workdir/checkpoint.pt`` (resumed automatically). The model is saved to ``workdir/model``
with core.physics.io.flow_files.save_flow; ``metrics.json`` holds the curve. The reported
ESS/N is measured after training on ``plan.eval_samples`` fresh proposals whose coarse
fields come from exact HMC at the learned coarse couplings (not the running training
average).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.physics.control import ProgressHook, SamplingCancelled, StopHook
from core.physics.flows.config import FlowConfig
from core.physics.flows.gap import SolverGapError, measure_gap, solver_of
from core.physics.flows.push_batch import push_batch
from core.physics.flows.rg_flow import build_flow
from core.physics.io.flow_files import save_flow
from core.physics.lattice.action import action
from core.physics.lattice.couplings import Couplings
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.ir import IRConfig, IRSource
from core.physics.training.logz import LogZConfig
from core.physics.training.loss import ess_fraction
from core.physics.training.plan import TrainPlan, flow_config
from core.physics.training.problem import Matching
from core.physics.training.trainer import Trainer, TrainerConfig
from core.physics.training.uv import UVConfig, UVSource
from core.physics.training.warm import (
    WarmStart,
    apply_warm_start,
    flat_couplings,
    load_warm_start,
)

GENERATORS = ("flow", "sampler", "logz", "gap", "init")


@dataclass(frozen=True)
class TrainOptions:
    """Library knobs no user sets (the user's are the :class:`TrainPlan`'s): the IR
    source's Langevin steps between batches and the UV source's HMC trajectories between
    batches, the log Z set (core.physics.training.logz), the solver-gap monitor
    (core.physics.training.trainer.TrainerConfig: measured every ``gap_every`` steps,
    refined past ``gap_refine_at`` nats up to ``max_solver_steps``, fatal past
    ``gap_threshold``), checkpoints, and what a grown stack's stage sets
    (core.physics.training.grow): ``lower_levels`` levels trained at lr·plan.lower_lr_factor,
    and the plateau stop."""

    langevin_between: int = 500
    logz: LogZConfig = field(default_factory=LogZConfig)
    gap_every: int = 10
    gap_threshold: float = 0.5
    gap_refine_at: float | None = 0.1  # past it RK4 doubles its steps (trainer, measured)
    max_solver_steps: int = 64
    checkpoint_every: int = 50
    checkpoint_minutes: float = 3.0
    uv_between: int = 2
    lower_levels: int = 0  # grown stacks (core.physics.training.grow): levels at a reduced lr
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


def _couplings(plan: TrainPlan) -> tuple[LearnableCouplings, LearnableCouplings]:
    c = Couplings(plan.kappa, plan.lam)
    learn_coarse = plan.method == "ir"
    learn_fine = plan.method == "uv"
    coarse = LearnableCouplings(c, learn_kappa=learn_coarse,
                                learn_lam=learn_coarse and plan.learn_lam)
    fine = LearnableCouplings(c, learn_kappa=learn_fine, learn_lam=learn_fine and plan.learn_lam)
    return coarse, fine


def build_problem(plan: TrainPlan, opts: TrainOptions, gens: dict[str, torch.Generator],
                  init: WarmStart | None = None) -> tuple[Matching, FlowConfig]:
    """The flow (warm-started from ``init``), its couplings and coarse source, as the
    :class:`Matching` problem the Trainer runs, and the flow's config."""
    # the registry reference (plan.init_from) names the parent; a bare directory only when
    # there is none (CLI use), so no worker scratch path travels inside config.json
    recorded = None if init is None else (init.parent or None)
    config = flow_config(plan, parent=plan.init_from or recorded)
    flow = build_flow(config)
    dtype = torch.float32 if plan.dtype == "float32" else torch.float64
    coarse, fine = _couplings(plan)
    if init is not None:
        apply_warm_start(init, flow, coarse, fine)
    flow = flow.to(plan.device)
    source: IRSource | UVSource | None = None
    if plan.method == "ir":
        source = IRSource(dim=plan.dim, coarse_L=plan.coarse_L, batch=plan.batch, coarse=coarse,
                          generator=gens["sampler"], logz_generator=gens["logz"], dtype=dtype,
                          device=plan.device,
                          config=IRConfig(n_therm=plan.langevin_therm,
                                          n_between=opts.langevin_between, logz=opts.logz))
    elif plan.method == "uv":
        source = UVSource(dim=plan.dim, coarse_L=plan.coarse_L, fine_L=plan.L, batch=plan.batch,
                          coarse=coarse.values(), fine=fine, generator=gens["sampler"],
                          logz_generator=gens["logz"], dtype=dtype, device=plan.device,
                          config=UVConfig(n_between=opts.uv_between, logz=opts.logz))
    problem = Matching(flow, coarse, fine, source, gens["flow"],
                       kinetic_weight=plan.kinetic_weight, baseline_batch=plan.batch)
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
    """ESS/N (eq. 12) and D^(I) = −mean log w on ``n`` fresh proposals; ``gap`` the solver
    gap max |Δ log q| (nats)."""

    ess: float
    loss: float
    gap: float
    n: int


def _checked(chunks: Any, should_stop: StopHook | None) -> Any:
    """The chunks, asking ``should_stop`` before each (SamplingCancelled when it says so)."""
    for i, chunk in enumerate(chunks):
        if should_stop is not None and should_stop():
            raise SamplingCancelled(f"the final evaluation stopped before chunk {i + 1}")
        yield chunk


def evaluate(problem: Matching, plan: TrainPlan, n: int, gen: torch.Generator) -> Evaluation:
    """ESS/N and D^(I) on n fresh proposals (coarse fields from exact HMC: 64 chains, 200
    thermalisation trajectories, thinned by 2·τ_int) and the gap. ``problem.should_stop``
    is asked between HMC trajectories and between pushes (:func:`push_batch`):
    SamplingCancelled when it answers True."""
    flow: Any = problem.flow
    p = next(flow.parameters())
    stop = problem.should_stop
    chunk = push_batch(plan.L ** plan.dim)
    with torch.no_grad():
        if problem.source is None:
            log_w = torch.cat([-_fine_action(problem, out.phi) - out.log_q.double()
                               for out in (flow(min(chunk, n - i), gen)
                                           for i in _checked(range(0, n, chunk), stop))])
            gap = problem.gap(torch.empty(64), gen).log_q
        else:
            c = problem.coarse.values()
            hmc = run_hmc(dim=plan.dim, L=plan.coarse_L, kappa=c.kappa, lam=c.lam,
                          params=HmcParams(n_samples=n, chains=64, n_therm=200), generator=gen,
                          device=plan.device, should_stop=stop)
            phi_c = hmc.configs.reshape((-1, *hmc.configs.shape[2:]))[:n]
            phi_c = phi_c.to(device=p.device, dtype=p.dtype)
            log_w = torch.cat([problem.log_w(problem.push(x, generator=gen))
                               for x in _checked(phi_c.split(chunk), stop)])
            gap = measure_gap(flow, phi_c[:64], gen).log_q
    return Evaluation(ess=ess_fraction(log_w), loss=float(-log_w.mean()), gap=gap,
                      n=int(log_w.numel()))


def _fine_action(problem: Matching, phi: torch.Tensor) -> torch.Tensor:
    return action(phi.double(), problem.fine.kappa, problem.fine.lam)


def train(plan: TrainPlan, *, workdir: Path, progress: ProgressHook | None = None,
          should_stop: StopHook | None = None,
          options: TrainOptions | None = None, init_dir: Path | None = None,
          record_init_dir: bool = True) -> TrainResult:
    """Train (or resume) the flow the plan describes; save it to ``workdir/model``.

    ``init_dir``: a parent model (core.physics.io.flow_files) whose level weights, σ_θ and
    learned couplings seed this run (core.physics.training.warm; the plan's kernel_size
    must be the parent's); the saved config records it as parent (``record_init_dir=False``:
    only ``plan.init_from`` is recorded — a grown stack's intermediate stages are scratch
    directories, not parents)."""
    opts = options or TrainOptions()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    gens = {k: torch.Generator(device=plan.device).manual_seed(plan.seed * 7919 + i)
            for i, k in enumerate(GENERATORS)}
    init = load_warm_start(Path(init_dir), plan) if init_dir is not None else None
    if init is not None and not record_init_dir:
        init.parent = plan.init_from or ""
    problem, config = build_problem(plan, opts, gens, init)
    problem.set_should_stop(should_stop)  # thermalisation and evaluation too
    tcfg = TrainerConfig(steps=plan.steps, lr=plan.lr, lr_decay=plan.lr_decay,
                         max_minutes=plan.max_minutes, target_ess=plan.target_ess,
                         gap_every=opts.gap_every, gap_threshold=opts.gap_threshold,
                         gap_refine_at=opts.gap_refine_at,
                         max_solver_steps=opts.max_solver_steps,
                         checkpoint_every=opts.checkpoint_every,
                         checkpoint_minutes=opts.checkpoint_minutes,
                         coupling_lr=plan.coupling_lr, lower_levels=opts.lower_levels,
                         lower_lr_factor=plan.lower_lr_factor,
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
        return TrainResult(model_dir=workdir / "model", method=plan.method, ess=math.nan,
                           loss=math.nan, couplings={}, steps=loop.steps, seconds=loop.seconds,
                           gap=math.nan, stopped=loop.stopped)
    # the solver the monitor may have refined is part of the model (config.json)
    config = config.model_copy(update={"solver": solver_of(problem.flow).to_dict()})
    ev = evaluate(problem, plan, plan.eval_samples, gens["init"])
    couplings: dict[str, dict[str, float] | None] = {
        "coarse": None if plan.method == "baseline" else problem.coarse.as_dict(),
        "fine": problem.fine.as_dict()}
    metrics = {"ess": ev.ess, "loss": ev.loss, "gap": ev.gap, "steps": loop.steps,
               "stopped": loop.stopped, "seconds": loop.seconds, "eval_samples": ev.n,
               "curve": [asdict(r) for r in loop.curve], "solver": config.solver,
               "kinetic_weight": plan.kinetic_weight, "coupling_lr": plan.coupling_lr,
               "lr": plan.lr, "batch": plan.batch}
    model_dir = workdir / "model"
    save_flow(model_dir, problem.flow.cpu(), config,
              flat_couplings(problem.coarse.values(), problem.fine.values()), metrics,
              overwrite=True)
    return TrainResult(model_dir=model_dir, method=plan.method, ess=ev.ess, loss=ev.loss,
                       couplings=couplings, steps=loop.steps, seconds=loop.seconds,
                       gap=ev.gap, stopped=loop.stopped)


__all__ = ["Evaluation", "TrainOptions", "TrainResult", "build_problem", "evaluate",
           "train"]

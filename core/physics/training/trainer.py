"""The training loop: Adam β = (0.8, 0.9), lr·decay^step (Appendix C), budgets, curve,
solver-gap guard, atomic checkpoints and bit-exact resume.

Checkpoints (``torch.save`` of tensors/dicts only, loaded with ``weights_only=True``, written
to a temporary name and renamed) hold the model and optimiser/scheduler states, the coarse
sources' sampler states (Langevin fields, HMC chains, log Z sets), every torch.Generator
state, the step and the curve; resuming with the same seed continues the identical curve.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from core.physics.control import ProgressHook, StopHook
from core.physics.flows.gap import GapMeasure, check_gap, refined_solver, set_solver, solver_of
from core.physics.flows.solver import SolverConfig
from core.physics.training.problem import Matching


class TrainingDiverged(RuntimeError):
    """The loss or its gradient became non-finite."""


@dataclass(frozen=True)
class TrainerConfig:
    """Optimiser, budgets and monitors. ``steps`` is the total step budget (a resumed run
    counts the steps already done); ``target_ess`` stops once the mean ESS/N over the last
    ``ess_window`` steps reaches it; the gap is measured every ``gap_every`` steps on
    ``gap_batch`` configurations; past ``gap_refine_at`` nats a fixed-step solver doubles
    its steps (up to ``max_solver_steps``, recorded in the curve's ``extra``) and training
    stops with SolverGapError only if the gap stays above ``gap_threshold`` nats."""

    steps: int = 500
    lr: float = 0.01
    lr_decay: float = 0.997
    betas: tuple[float, float] = (0.8, 0.9)
    max_minutes: float | None = None
    target_ess: float | None = None
    ess_window: int = 10
    gap_every: int = 10
    gap_batch: int = 16
    gap_threshold: float = 0.5
    gap_refine_at: float | None = 0.1  # None: never refine (the original behaviour)
    max_solver_steps: int = 64
    checkpoint_every: int = 50
    checkpoint_minutes: float = 3.0
    grad_clip: float | None = None
    coupling_lr: float | None = None  # None: same as lr (Adam moves κ by ~lr per step)
    lower_levels: int = 0  # grown stacks: the first levels, trained at lr·lower_lr_factor
    lower_lr_factor: float = 1.0  # 0 freezes them (gradients still flow through to κ_L)
    plateau_window: int | None = None  # stop once the windowed mean ESS/N stops rising
    plateau_gain: float = 0.0


@dataclass(frozen=True)
class CurveRow:
    """One optimiser step: ESS/N, loss (D^(I)), KL estimate, couplings, σ_θ, solver gap."""

    step: int
    wall: float
    ess: float
    loss: float
    kl: float
    coarse_kappa: float
    coarse_lam: float
    fine_kappa: float
    fine_lam: float
    sigma: list[float]
    lr: float
    gap_log_q: float | None
    gap_phi: float | None
    extra: dict[str, float]


@dataclass(frozen=True)
class LoopResult:
    curve: list[CurveRow]
    steps: int
    stopped: str
    seconds: float


def _sigmas(problem: Matching) -> list[float]:
    """σ_θ of each level (coarse to fine); the baseline's prior width."""
    flow: Any = problem.flow
    if hasattr(flow, "levels"):
        return [float(level.noise.sigma.detach()) for level in flow.levels]
    if hasattr(flow, "prior_log_sigma"):
        return [float(flow.prior_log_sigma.detach().exp())]
    return []


class Trainer:
    """Runs a :class:`Matching` problem; ``generators`` are all the RNG streams it uses."""

    def __init__(self, problem: Matching, config: TrainerConfig,
                 generators: dict[str, torch.Generator], *, checkpoint: Path | None = None,
                 progress: ProgressHook | None = None,
                 should_stop: StopHook | None = None) -> None:
        self.problem, self.config, self.generators = problem, config, generators
        self.checkpoint_path = checkpoint
        self.progress, self.should_stop = progress, should_stop
        coupling_ids = {id(p) for c in (problem.coarse, problem.fine) for p in c.parameters()}
        lower_ids = _lower_level_ids(problem, config.lower_levels)
        if config.lower_levels and config.lower_lr_factor == 0.0:
            for p in problem.parameters():
                if id(p) in lower_ids:
                    p.requires_grad_(False)
        flow_params = [p for p in problem.parameters()
                       if p.requires_grad and id(p) not in coupling_ids | lower_ids]
        lower_params = [p for p in problem.parameters()
                        if p.requires_grad and id(p) in lower_ids]
        coupling_params = [p for p in problem.parameters()
                           if p.requires_grad and id(p) in coupling_ids]
        groups: list[dict[str, Any]] = [{"params": flow_params}] if flow_params else []
        if lower_params:
            groups.append({"params": lower_params, "lr": config.lr * config.lower_lr_factor})
        if coupling_params:
            lr_c = config.lr if config.coupling_lr is None else config.coupling_lr
            groups.append({"params": coupling_params, "lr": lr_c})
        self.optimizer = torch.optim.Adam(groups, lr=config.lr, betas=config.betas)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, config.lr_decay)
        self.step = 0
        self.curve: list[CurveRow] = []
        self.elapsed = 0.0  # wall seconds of earlier runs (resume)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed": self.elapsed,
            "model": self.problem.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "source": self.problem.source_state(),
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "curve": [asdict(r) for r in self.curve],
            **self._solver_state(),
        }

    def _solver_state(self) -> dict[str, Any]:
        """The flow's (possibly refined) solver; nothing for a flow without an ODE."""
        try:
            return {"solver": solver_of(self.problem.flow).to_dict()}
        except TypeError:
            return {}

    def save_checkpoint(self) -> None:
        if self.checkpoint_path is None:
            return
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, path)

    def load_checkpoint(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.problem.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.problem.load_source_state(state["source"])
        for k, g in self.generators.items():  # last: constructing samplers draws from them
            g.set_state(state["generators"][k])
        self.step = int(state["step"])
        self.elapsed = float(state["elapsed"])
        self.curve = [CurveRow(**r) for r in state["curve"]]
        if "solver" in state:  # refined during the earlier run
            set_solver(self.problem.flow, SolverConfig.from_dict(state["solver"]))

    # -- the loop ----------------------------------------------------------------------------
    def _budget_stop(self, started: float) -> str | None:
        cfg = self.config
        if self.step >= cfg.steps:
            return "steps"
        if cfg.max_minutes is not None and time.perf_counter() - started > 60 * cfg.max_minutes:
            return "wall_time"
        if cfg.target_ess is not None and len(self.curve) >= cfg.ess_window:
            recent = [r.ess for r in self.curve[-cfg.ess_window:]]
            if sum(recent) / len(recent) >= cfg.target_ess:
                return "target_ess"
        if cfg.plateau_window is not None and len(self.curve) >= 2 * cfg.plateau_window:
            w = cfg.plateau_window
            last = sum(r.ess for r in self.curve[-w:]) / w
            before = sum(r.ess for r in self.curve[-2 * w:-w]) / w
            if last - before <= cfg.plateau_gain:
                return "plateau"
        if self.should_stop is not None and self.should_stop():
            return "cancelled"
        return None

    def one_step(self, wall: float) -> CurveRow:
        cfg, problem = self.config, self.problem
        lr = self.optimizer.param_groups[0]["lr"]
        terms, extra = problem.step_loss()
        if not math.isfinite(float(terms.surrogate.detach())):
            raise TrainingDiverged(f"non-finite loss at step {self.step} (ESS/N {terms.ess:.3g})")
        self.optimizer.zero_grad(set_to_none=True)
        terms.surrogate.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        if any(p.grad is not None and not bool(torch.isfinite(p.grad).all()) for p in params):
            raise TrainingDiverged(f"non-finite gradient at step {self.step}")
        self.optimizer.step()
        problem.project()
        self.scheduler.step()
        gap_lq = gap_phi = None
        gap = None
        if cfg.gap_every > 0 and (self.step + 1) % cfg.gap_every == 0:
            gap = self._measure_gap()
            while (better := refined_solver(solver_of(problem.flow), gap, cfg.gap_refine_at,
                                            cfg.max_solver_steps)) is not None:
                set_solver(problem.flow, better)  # weights kept; the gap re-measured on it
                extra = {**extra, "solver_steps": float(better.steps)}
                gap = self._measure_gap()
            gap_lq, gap_phi = gap.log_q, gap.phi
        c, f = problem.coarse.values(), problem.fine.values()
        row = CurveRow(step=self.step + 1, wall=wall, ess=terms.ess, loss=terms.d1,
                       kl=terms.kl, coarse_kappa=c.kappa, coarse_lam=c.lam,
                       fine_kappa=f.kappa, fine_lam=f.lam, sigma=_sigmas(problem), lr=lr,
                       gap_log_q=gap_lq, gap_phi=gap_phi, extra=extra)
        self.step += 1
        self.curve.append(row)
        if gap is not None:
            check_gap(gap, cfg.gap_threshold, self.step)  # the curve keeps the failing row
        return row

    def _measure_gap(self) -> GapMeasure:
        """Gap on fresh coarse fields from the source's current state (no sampler advance:
        it uses its own generator stream ``gap``)."""
        problem = self.problem
        g = self.generators["gap"]
        n = self.config.gap_batch
        if problem.source is None:
            return problem.gap(torch.empty(n), g)
        phi = _current_coarse(problem)[:n]
        return problem.gap(phi, g)

    def run(self) -> LoopResult:
        started = time.perf_counter()
        last_ckpt = started
        stopped = "steps"
        total = self.config.steps
        while True:
            reason = self._budget_stop(started)
            if reason is not None:
                stopped = reason
                break
            row = self.one_step(self.elapsed + time.perf_counter() - started)
            if self.progress is not None:
                self.progress(self.step, total, {"ess": row.ess, "loss": row.loss,
                                                 "coarse_kappa": row.coarse_kappa,
                                                 "fine_kappa": row.fine_kappa})
            now = time.perf_counter()
            every = self.config.checkpoint_every
            if (every > 0 and self.step % every == 0) or (
                    now - last_ckpt > 60 * self.config.checkpoint_minutes):
                self._save_with_elapsed(started)
                last_ckpt = now
        self._save_with_elapsed(started)
        seconds = time.perf_counter() - started
        self.elapsed += seconds
        return LoopResult(curve=self.curve, steps=self.step, stopped=stopped,
                          seconds=self.elapsed)

    def _save_with_elapsed(self, started: float) -> None:
        saved = self.elapsed
        self.elapsed = saved + time.perf_counter() - started
        self.save_checkpoint()
        self.elapsed = saved


def _lower_level_ids(problem: Matching, count: int) -> set[int]:
    """ids of the parameters of the first ``count`` levels of a super-resolving stack."""
    levels = getattr(problem.flow, "levels", None)
    if count <= 0 or levels is None:
        return set()
    return {id(p) for level in list(levels)[:count] for p in level.parameters()}


def _current_coarse(problem: Matching) -> torch.Tensor:
    """Detached coarse fields at the source's current state (no sampler step)."""
    src: Any = problem.source
    for name in ("langevin", "hmc"):
        sampler = getattr(src, name, None)
        if sampler is not None:
            return sampler.phi.detach()
    raise TypeError(f"cannot read coarse fields from {type(src).__name__}")

"""The device check's sweeps (bench/gpu_check.py): one IR optimiser step and one push of
the sampler against the batch, the push with each level's field compiled beside eager, and
direct HMC / cluster chains run for a fixed time.

A step is the trainer's own (core.physics.training.trainer.Trainer.one_step: Langevin draw,
T_θ with log q and the kinetic term, the log Z terms, backward, Adam), without the
solver-gap monitor (every 10th step in training). A push is
core.physics.exact.sampler.push: T_θ under no_grad with float64 log q, copied to the host.
The flows are fresh (untrained): the cost of a step does not depend on the weights. Every
timing is bracketed by torch.cuda.synchronize on CUDA.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

from core.jobs.specs import Device, TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import Proposals, push
from core.physics.flows.rg_flow import SuperResolvingFlow
from core.physics.mcmc.cluster import ClusterParams, ClusterSampler
from core.physics.mcmc.hmc import HmcParams, HMCSampler
from core.physics.stats.gamma import gamma_method
from core.physics.training.api import GENERATORS, TrainOptions, build_problem, initialise_sigma
from core.physics.training.trainer import Trainer, TrainerConfig

FIELD_METHOD = "state_velocity_and_divergence"  # what the CNF calls per RK stage (cnf.py)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[], Any], calls: int, device: str) -> float:
    """Wall seconds per call of ``fn`` over ``calls`` calls, synchronised on both ends."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / calls


@dataclass(frozen=True)
class Point:
    """Where the sweeps run: L, the fine couplings, the Langevin thermalisation of the IR
    source (irrelevant to timings, so short), warm-up and timed calls, the seed."""

    L: int
    kappa: float
    lam: float
    device: Device
    langevin_therm: int
    warmup: int
    timed: int
    seed: int = 0


def trainer_at(point: Point, batch: int) -> Trainer:
    """A fresh default IR problem (TrainSpec's defaults: levels, k, RK4 steps, float32) at
    ``batch``, σ_θ initialised as train() does, in a Trainer without the gap monitor."""
    spec = TrainSpec(method="ir", dim=2, L=point.L, kappa=point.kappa, lam=point.lam,
                     batch=batch, device=point.device, seed=point.seed,
                     langevin_therm=point.langevin_therm)
    plan = train_plan(spec)
    gens = {k: torch.Generator(device=point.device).manual_seed(point.seed * 7919 + i)
            for i, k in enumerate(GENERATORS)}
    problem, _ = build_problem(plan, TrainOptions(), gens)
    initialise_sigma(problem, gens["init"])  # the Langevin thermalisation happens here
    config = TrainerConfig(steps=10**9, lr=plan.lr, lr_decay=plan.lr_decay,
                           coupling_lr=plan.coupling_lr, gap_every=0)
    return Trainer(problem, config, gens)


def pusher(trainer: Trainer, device: str, seed: int) -> Callable[[], Proposals]:
    """One sampler push of a batch of coarse fields from the trainer's source, with the
    flow's noise drawn from a fresh generator seeded ``seed`` (the same ζ every call)."""
    problem = trainer.problem
    assert problem.source is not None
    phi = problem.source.draw().detach()
    coarse, fine = problem.coarse.values(), problem.fine.values()

    def run() -> Proposals:
        gen = torch.Generator(device=device).manual_seed(seed)
        return push(problem.flow, phi, coarse, fine, gen, chunk=phi.shape[0])

    return run


def step_fn(trainer: Trainer) -> Callable[[], Any]:
    return lambda: trainer.one_step(0.0)


@dataclass(frozen=True)
class SweepPoint:
    """One batch: seconds per optimiser step and per push, and configurations/s of each."""

    batch: int
    step_s: float
    train_configs_per_s: float
    push_s: float
    push_configs_per_s: float


def sweep_point(point: Point, batch: int) -> SweepPoint:
    trainer = trainer_at(point, batch)
    step = step_fn(trainer)
    for _ in range(point.warmup):
        step()
    step_s = seconds_per_call(step, point.timed, point.device)
    run = pusher(trainer, point.device, point.seed + 1)
    run()
    push_s = seconds_per_call(run, point.timed, point.device)
    return SweepPoint(batch, step_s, batch / step_s, push_s, batch / push_s)


def batch_sweep(point: Point, batches: tuple[int, ...]) -> dict[str, Any]:
    """Step and push timings at each batch, printed as they come; a batch that fails (out of
    memory) is recorded with its error and ends the sweep (larger ones would fail too)."""
    rows: list[dict[str, Any]] = []
    for batch in batches:
        try:
            p = sweep_point(point, batch)
        except Exception as err:  # recorded; the check goes on with the next part
            rows.append({"batch": batch, "error": error_text(err)})
            print(f"  batch {batch}: {rows[-1]['error'].splitlines()[0]}", flush=True)
            break
        finally:
            if point.device == "cuda":
                torch.cuda.empty_cache()
        rows.append(asdict(p))
        print(f"  batch {batch:>5}: step {p.step_s:.3f} s ({p.train_configs_per_s:.0f} "
              f"configs/s), push {p.push_s:.4f} s ({p.push_configs_per_s:.0f} configs/s)",
              flush=True)
    return {"L": point.L, "kappa": point.kappa, "points": rows}


def compile_fields(flow: torch.nn.Module) -> list[torch.nn.Module]:
    """Replace each level's state function by torch.compile(dynamic=False) of it (an
    instance attribute shadowing the method); returns the fields for :func:`restore`."""
    assert isinstance(flow, SuperResolvingFlow)
    torch.compiler.reset()
    fields: list[torch.nn.Module] = [level.cnf.field for level in flow.level_list]
    for field in fields:
        vars(field)[FIELD_METHOD] = torch.compile(getattr(field, FIELD_METHOD), dynamic=False)
    return fields


def restore(fields: list[torch.nn.Module]) -> None:
    for field in fields:
        vars(field).pop(FIELD_METHOD, None)


def error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def under_compiled(flow: torch.nn.Module, out: dict[str, Any], first: Callable[[], Any],
                   timed: Callable[[], float]) -> tuple[Any, float] | None:
    """With the flow's fields compiled: ``first()`` (its seconds, mostly compilation, go to
    ``out["compile_s"]``), then ``timed()`` seconds per call. A failure is recorded as
    ``out["compile_error"]`` and answers None; the fields are eager again afterwards."""
    fields = compile_fields(flow)
    try:
        t0 = time.perf_counter()
        result = first()
        out["compile_s"] = time.perf_counter() - t0
        return result, timed()
    except Exception as err:  # recorded; the eager figures stand
        out["compile_error"] = error_text(err)
        print(f"  compile failed: {out['compile_error'].splitlines()[0]}", flush=True)
        return None
    finally:
        restore(fields)


def compiled_push(point: Point, batch: int) -> dict[str, Any]:
    """One push of ``batch`` eager and with the fields compiled (same coarse fields, ζ and
    weights): configs/s, the first compiled call's seconds (compilation) and max |Δ log q|,
    max |Δ φ̃| between them. A compile failure is recorded as ``compile_error`` beside the
    eager figures."""
    trainer = trainer_at(point, batch)
    run = pusher(trainer, point.device, point.seed + 1)
    eager = run()
    eager_s = seconds_per_call(run, point.timed, point.device)
    out: dict[str, Any] = {"batch": batch, "L": point.L, "eager_push_s": eager_s,
                           "eager_configs_per_s": batch / eager_s}
    print(f"  batch {batch}: eager push {batch / eager_s:.1f} configs/s", flush=True)
    got = under_compiled(trainer.problem.flow, out, run,
                         lambda: seconds_per_call(run, point.timed, point.device))
    if got is None:
        return out
    compiled, compiled_s = got
    out.update(compiled_push_s=compiled_s, compiled_configs_per_s=batch / compiled_s,
               speedup=eager_s / compiled_s,
               max_abs_diff_log_q=float((compiled.log_q - eager.log_q).abs().max()),
               max_abs_log_q=float(eager.log_q.abs().max()),
               max_abs_diff_phi=float((compiled.phi - eager.phi).abs().max()))
    print(f"  compiled push {batch / compiled_s:.1f} configs/s ({eager_s / compiled_s:.2f}×, "
          f"compiled in {out['compile_s']:.0f} s); max |Δ log q| "
          f"{out['max_abs_diff_log_q']:.2e} of |log q| ≤ {out['max_abs_log_q']:.3g}, "
          f"max |Δ φ̃| {out['max_abs_diff_phi']:.2e}", flush=True)
    return out


def compiled_step(point: Point, batch: int) -> dict[str, Any]:
    """One optimiser step of ``batch`` eager, then with the fields compiled (forward and
    backward): seconds and the first compiled step's seconds; a compile failure is
    recorded as ``compile_error`` beside the eager figure."""
    trainer = trainer_at(point, batch)
    step = step_fn(trainer)
    for _ in range(point.warmup):
        step()
    eager_s = seconds_per_call(step, point.timed, point.device)
    out: dict[str, Any] = {"batch": batch, "L": point.L, "eager_step_s": eager_s}
    print(f"  batch {batch}: eager step {eager_s:.3f} s", flush=True)

    def warm_then_time() -> float:
        for _ in range(point.warmup):
            step()
        return seconds_per_call(step, point.timed, point.device)

    got = under_compiled(trainer.problem.flow, out, step, warm_then_time)
    if got is None:
        return out
    compiled_s = got[1]
    out.update(compiled_step_s=compiled_s, speedup=eager_s / compiled_s)
    print(f"  compiled step {compiled_s:.3f} s ({eager_s / compiled_s:.2f}×, compiled in "
          f"{out['compile_s']:.0f} s)", flush=True)
    return out


MIN_UNITS = 20  # a fixed-time chain runs at least this many units (for the Γ-method)


def direct_rate(algorithm: str, *, L: int, kappa: float, lam: float, seconds: float,
                chains: int, device: Device, seed: int) -> dict[str, Any]:
    """HMC trajectories (``algorithm`` "hmc") or cluster sweeps ("cluster") of ``chains``
    float32 chains at (L, κ, λ) for ``seconds``, after the samplers' own thermalisation
    (HmcParams / ClusterParams: n_therm, not timed). M of every chain after every unit, as
    bench/cost.py's tau_study records it: configs/s = units·chains/s, τ_int of χ = V·M² and
    of |M| (Γ-method over the chains, in units), independent χ/s = configs/s / 2τ_int(χ)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    common: dict[str, Any] = dict(dim=2, L=L, chains=chains, generator=gen, kappa=kappa,
                                  lam=lam, device=device, dtype=torch.float32)
    unit: Callable[[], Any]
    t0 = time.perf_counter()
    if algorithm == "hmc":
        hp = HmcParams(n_samples=chains, chains=chains)
        hmc = HMCSampler(integrator=hp.integrator, trajectory_length=hp.trajectory_length,
                         start=hp.start, **common)
        hmc.thermalise(hp.n_therm, target_acceptance=hp.target_acceptance)
        unit, field, n_therm = hmc.trajectory, (lambda: hmc.phi), hp.n_therm
        extra: dict[str, Any] = {"n_leapfrog": hmc.n_leapfrog, "step_size": hmc.step_size}
    elif algorithm == "cluster":
        cp = ClusterParams(n_samples=chains, chains=chains)
        cl = ClusterSampler(clusters_per_sweep=cp.clusters_per_sweep, start=cp.start, **common)
        cl.thermalise(cp.n_therm)
        unit, field, n_therm = cl.sweep, (lambda: cl.phi), cp.n_therm
        extra = {"clusters_per_sweep": cp.clusters_per_sweep, "step_size": cl.step_size}
    else:
        raise ValueError(f"algorithm={algorithm!r}: use hmc or cluster")
    sync(device)
    therm_s = time.perf_counter() - t0
    magnetisation: list[torch.Tensor] = []
    t0 = time.perf_counter()
    while len(magnetisation) < MIN_UNITS or time.perf_counter() - t0 < seconds:
        unit()
        magnetisation.append(field().mean(dim=(1, 2)))
    sync(device)
    wall = time.perf_counter() - t0
    m = torch.stack(magnetisation).double().cpu().numpy()  # (units, chains)
    chi, abs_m = gamma_method(L**2 * m**2), gamma_method(abs(m))
    rate = m.size / wall
    print(f"  {algorithm} ({device}, {chains} chains, κ = {kappa}): {rate:.1f} configs/s, "
          f"τ_int(χ) {chi.tau_int:.2f} ± {chi.tau_int_error:.2f} ({m.shape[0]} units) → "
          f"{rate / max(2 * chi.tau_int, 1.0):.1f} independent χ/s", flush=True)
    return {"algorithm": algorithm, "device": device, "L": L, "kappa": kappa, "lam": lam,
            "chains": chains, "units": m.shape[0], "seconds": wall, "n_therm": n_therm,
            "therm_s": therm_s, "configs_per_s": rate, "chi": chi.mean, "chi_error": chi.error,
            "tau_int_chi": chi.tau_int, "tau_int_chi_error": chi.tau_int_error,
            "tau_int_abs_m": abs_m.tau_int,
            "independent_chi_per_s": rate / max(2 * chi.tau_int, 1.0), **extra}

"""One entry for every job: ``run_job(spec, ...)``, called by the CLI and by the Celery worker.

A job is a validated spec (``core.specs``) plus a working directory. Progress goes out
through a callback, cancellation comes in through ``should_stop`` (checked between
steps), and the result names the files produced: an HDF5 ensemble for ``hmc`` and
``sample`` jobs, a model directory for ``train`` jobs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core import __version__
from core.job_request import JobSpec
from core.scan_spec import ScanSpec
from core.specs import HmcSpec, SampleSpec, TrainSpec

if TYPE_CHECKING:
    from core.lattice.observables import Measurements


@dataclass(frozen=True)
class Progress:
    """A progress report: ``step`` of ``total`` in ``stage``, with figures such as
    ``ess``, ``acceptance``, ``loss`` and ``eta_seconds`` in ``metrics``."""

    step: int
    total: int | None
    stage: str
    metrics: dict[str, float] = field(default_factory=dict)


class JobCancelled(Exception):
    """Raised when ``should_stop()`` turned true; nothing was registered."""


class JobError(ValueError):
    """A job that cannot run as specified (device, model reference, ...); one-line message."""


@dataclass(frozen=True)
class JobResult:
    """What a job produced. ``summary`` is what ``srflow <kind> --json`` prints."""

    kind: str
    summary: dict[str, Any]
    ensemble: Path | None = None
    model_dir: Path | None = None


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; a clear error when CUDA is asked for and absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise JobError("device=cuda is not available on this machine: use --device cpu")
    if name not in ("cpu", "cuda"):
        raise JobError(f"device={name!r} is unknown: use cpu or cuda")
    return torch.device(name)


def _eta(start: float, done: int, total: int) -> float:
    rate = done / max(time.perf_counter() - start, 1e-9)
    return (total - done) / rate if rate > 0 else math.inf


def _chain_checks(m: Measurements) -> dict[str, Any]:
    """Chains against each other for |M| and S/V (domain walls in the broken phase).

    ``consistent``: False if either observable is inconsistent, None (no verdict, with the
    reasons) if either is too short to judge (core.chains), else True."""
    from core.chains import chain_consistency

    if m.magnetization.shape[1] < 2:
        return {"checked": False, "consistent": None, "reason": "needs ≥ 2 chains"}
    out: dict[str, Any] = {"checked": True}
    names = ("abs_magnetization", "action_density")
    for name, series in zip(names, (abs(m.magnetization), m.action_density), strict=True):
        out[name] = chain_consistency(series).as_dict()
    verdicts = [out[k]["consistent"] for k in names]
    out["consistent"] = False if False in verdicts else None if None in verdicts else True
    if out["consistent"] is None:
        out["reason"] = "; ".join(f"{k}: {out[k]['reason']}" for k in names if out[k]["reason"])
    return out


def run_hmc_job(
    spec: HmcSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> JobResult:
    """Direct sampling on the lattice of ``spec`` — HMC, or the cluster algorithm
    (``spec.algorithm``); writes ``workdir/ensemble.h5``."""
    from core.io.ensemble import EnsembleMeta, write_ensemble
    from core.lattice.observables import measure, summarize_measurements
    from core.samplers.hmc import SamplingCancelled

    device = resolve_device(spec.device)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    start = time.perf_counter()
    try:
        sampled = (_run_cluster(spec, generator, device, progress, should_stop)
                   if spec.algorithm == "cluster"
                   else _run_hmc(spec, generator, device, progress, should_stop))
    except SamplingCancelled as exc:
        raise JobCancelled(str(exc)) from exc
    configs_tc, details = sampled
    meas = measure(configs_tc, dim=spec.dim, kappa=spec.kappa, lam=spec.lam)
    observables = summarize_measurements(meas)
    checks = _chain_checks(meas)
    details = {**details, "chains": spec.chains, "samples_per_chain": int(configs_tc.shape[0]),
               "chain_check": checks}
    seconds = time.perf_counter() - start
    obs = {name: est.as_dict() for name, est in observables.items()}
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "ensemble.h5"
    configs = configs_tc.transpose(0, 1).reshape(-1, *configs_tc.shape[2:])
    write_ensemble(
        out,
        configs.cpu().numpy(),
        EnsembleMeta(
            dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam, method=spec.algorithm,
            seeds={"seed": spec.seed},
            sampler={
                **spec.model_dump(), **{k: v for k, v in details.items() if k != "chains"},
                "layout": "chain-major: configs[c*T + t] is chain c, time t",
            },
            acceptance=float(details["acceptance"]), ess=None, thinning=int(details["thin"]),
            observables=obs, code_version=__version__,
        ),
    )
    summary = {
        "theory": {"dim": spec.dim, "L": spec.L, "kappa": spec.kappa, "lam": spec.lam},
        "acceptance": float(details["acceptance"]),
        "observables": obs,
        "hmc": details,
        "seconds": seconds,
        "out": str(out),
    }
    return JobResult("hmc", summary, ensemble=out)


def _run_hmc(spec: HmcSpec, generator: torch.Generator, device: torch.device,
             progress: ProgressFn | None, should_stop: StopFn | None,
             ) -> tuple[torch.Tensor, dict[str, Any]]:
    from core.samplers.hmc import run_hmc

    result = run_hmc(
        dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam,
        n_samples=spec.n_samples, chains=spec.chains, generator=generator,
        device=device, dtype=torch.float64, integrator=spec.integrator,
        trajectory_length=spec.trajectory_length, n_therm=spec.n_therm,
        target_acceptance=spec.target_acceptance, thin=spec.thin,
        progress=_adapter(progress, "hmc"), should_stop=should_stop,
        max_seconds=spec.max_seconds,
    )
    return result.configs, {
        "algorithm": "hmc", "acceptance": float(result.acceptance), "thin": int(result.thin),
        "step_size": float(result.step_size), "n_leapfrog": int(result.n_leapfrog),
        "dH_rms": float(result.dH_rms),
        "exp_mdH": [float(result.exp_mdH_mean), float(result.exp_mdH_error)],
        "start": result.start,
    }


def _run_cluster(spec: HmcSpec, generator: torch.Generator, device: torch.device,
                 progress: ProgressFn | None, should_stop: StopFn | None,
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
    from core.samplers.cluster import run_cluster

    result = run_cluster(
        dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam, n_samples=spec.n_samples,
        chains=spec.chains, generator=generator, device=device, dtype=torch.float64,
        n_therm=spec.n_therm, thin=spec.thin, clusters_per_sweep=spec.clusters_per_sweep,
        progress=_adapter(progress, "cluster"), should_stop=should_stop,
        max_seconds=spec.max_seconds,
    )
    return result.configs, {
        "algorithm": "cluster", "acceptance": float(result.acceptance),
        "thin": int(result.thin), "step_size": float(result.step_size),
        "clusters_per_sweep": int(result.clusters_per_sweep),
        "cluster_fraction": float(result.cluster_fraction), "start": result.start,
    }


def _adapter(progress: ProgressFn | None, stage: str) -> Callable[[int, int, dict[str, Any]], None]:
    """Bridge the library's ``(done, total, info)`` callbacks to :class:`Progress`."""
    start = time.perf_counter()

    def report(done: int, total: int, info: dict[str, Any]) -> None:
        if progress is None:
            return
        metrics = {k: float(v) for k, v in info.items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        metrics["eta_seconds"] = _eta(start, done, total) if total else math.inf
        progress(Progress(done, total, str(info.get("stage", info.get("phase", stage))), metrics))

    return report


def run_train_job(
    spec: TrainSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    init_dir: Path | None = None,
) -> JobResult:
    """Train (or resume from ``workdir/checkpoint``) and save the model to ``workdir/model``."""
    from core.samplers.hmc import SamplingCancelled
    from core.training.api import train
    from core.training.grow import grow_config, should_grow, train_grown
    from core.training.warm import WarmStartError

    resolve_device(spec.device)
    try:
        if should_grow(spec, init_dir):
            result = train_grown(spec, workdir=workdir, progress=_adapter(progress, "train"),
                                 should_stop=should_stop, init_dir=init_dir,
                                 grow=grow_config(spec))
        else:
            result = train(spec, workdir=workdir, progress=_adapter(progress, "train"),
                           should_stop=should_stop, init_dir=init_dir)
    except WarmStartError as err:
        raise JobError(f"init_from={spec.init_from!r}: {err}") from err
    except SamplingCancelled as exc:  # in thermalisation or the final evaluation
        raise JobCancelled(str(exc)) from exc
    if result.stopped == "cancelled":
        raise JobCancelled(f"training cancelled at step {result.steps}")
    summary = {
        "model": str(result.model_dir), "method": result.method,
        "theory": {"dim": spec.dim, "L": spec.L, "kappa": spec.kappa, "lam": spec.lam},
        "ess": result.ess, "loss": result.loss, "couplings": result.couplings,
        "steps": result.steps, "seconds": result.seconds, "solver_gap": result.gap,
        "stopped": result.stopped,
    }
    return JobResult("train", summary, model_dir=result.model_dir)


def run_sample_job(
    spec: SampleSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    model_resolver: Callable[[str], Path] | None = None,
) -> JobResult:
    """Metropolis-corrected fine ensemble from a model; writes ``workdir/ensemble.h5``."""
    from core.io.ensemble import EnsembleMeta, write_ensemble
    from core.io.flow_files import read_config
    from core.samplers.hmc import SamplingCancelled
    from core.sampling.sampler import sample
    from core.specs import coarse_sampler_error

    resolve_device(spec.device)
    model_dir = model_resolver(spec.model) if model_resolver else Path(spec.model)
    if not (model_dir / "config.json").is_file():
        raise JobError(f"model={spec.model!r}: no flow found there (expected config.json and "
                       "model.safetensors in a directory written by srflow train)")
    if spec.coarse_sampler != "hmc":
        cfg = read_config(model_dir)
        if (msg := coarse_sampler_error(spec.coarse_sampler, cfg.kind, cfg.coarse_L)):
            raise JobError(msg)
    try:
        res = sample(model_dir, n_samples=spec.n_samples, seed=spec.seed, chains=spec.chains,
                     device=spec.device, progress=_adapter(progress, "sample"),
                     should_stop=should_stop, coarse_sampler=spec.coarse_sampler)
    except SamplingCancelled as exc:  # in the coarse chains or the push
        raise JobCancelled(str(exc)) from exc
    obs = {k: v.as_dict() for k, v in res.observables.items()}
    rew = {k: v.as_dict() for k, v in res.reweighted.items()}
    config = json.loads((model_dir / "config.json").read_text())
    dim, size = int(config["dim"]), int(config["fine_L"])
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "ensemble.h5"
    write_ensemble(
        out, res.configs.cpu().numpy(),
        EnsembleMeta(
            dim=dim, L=size, kappa=res.fine.kappa, lam=res.fine.lam, method="flow+metropolis",
            seeds={"seed": spec.seed}, model_id=str(spec.model),
            sampler={**spec.model_dump(), "coarse_sampler": res.coarse_sampler,
                     "thin_coarse": res.thin, "coarse_tau_int": res.coarse_tau_int,
                     "coarse_couplings": res.coarse.as_dict() if res.coarse else None,
                     "ode_consistency": res.ode_consistency, "n_proposals": res.n_proposals},
            acceptance=res.acceptance, ess=res.ess, thinning=res.thin, observables=obs,
            code_version=__version__,
        ),
        extras={"log_q": res.log_q.cpu().numpy(), "action": res.action.cpu().numpy(),
                "accepted": res.accepted.cpu().numpy()},
    )
    summary = {
        "theory": {"dim": dim, "L": size, "kappa": res.fine.kappa, "lam": res.fine.lam},
        "acceptance": res.acceptance, "ess": res.ess, "ode_consistency": res.ode_consistency,
        "observables": obs, "reweighted": rew, "seconds": res.seconds, "out": str(out),
        "coarse": {"sampler": res.coarse_sampler, "thin": res.thin,
                   "tau_int": res.coarse_tau_int},
    }
    return JobResult("sample", summary, ensemble=out)


def run_job(
    spec: JobSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    model_resolver: Callable[[str], Path] | None = None,
) -> JobResult:
    """Run any job. ``model_resolver`` maps a sample spec's model reference to a directory."""
    if isinstance(spec, HmcSpec):
        return run_hmc_job(spec, workdir=workdir, progress=progress, should_stop=should_stop)
    if isinstance(spec, TrainSpec):
        return run_train_job(spec, workdir=workdir, progress=progress, should_stop=should_stop,
                             init_dir=model_resolver(spec.init_from)
                             if (model_resolver and spec.init_from) else None)
    if isinstance(spec, SampleSpec):
        return run_sample_job(
            spec, workdir=workdir, progress=progress, should_stop=should_stop,
            model_resolver=model_resolver,
        )
    if isinstance(spec, ScanSpec):
        from core.scan import run_scan_job

        return run_scan_job(spec, workdir=workdir, progress=progress, should_stop=should_stop)
    raise TypeError(f"unknown job spec {type(spec).__name__}")

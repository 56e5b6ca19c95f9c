"""One entry for every job: ``run_job(spec, ...)``, called by the CLI and by the Celery worker.

A job is a validated spec (``core.specs``) plus a working directory. Progress goes out
through a callback, cancellation comes in through ``should_stop`` (checked between
steps), and the result names the files produced: an HDF5 ensemble for ``hmc`` and
``sample`` jobs, a model directory for ``train`` jobs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core import __version__
from core.specs import HmcSpec, JobSpec, SampleSpec, TrainSpec


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


def run_hmc_job(
    spec: HmcSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> JobResult:
    """Direct HMC on the lattice of ``spec``; writes ``workdir/ensemble.h5``."""
    from core.io.ensemble import EnsembleMeta, write_ensemble
    from core.lattice.observables import summarize
    from core.samplers.hmc import SamplingCancelled, run_hmc

    device = resolve_device(spec.device)
    generator = torch.Generator(device=device).manual_seed(spec.seed)
    start = time.perf_counter()

    def report(done: int, total: int, info: dict[str, Any]) -> None:
        if progress is not None:
            metrics = {k: float(v) for k, v in info.items() if isinstance(v, int | float)}
            metrics["eta_seconds"] = _eta(start, done, total)
            progress(Progress(done, total, str(info.get("stage", "hmc")), metrics))

    try:
        result = run_hmc(
            dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam,
            n_samples=spec.n_samples, chains=spec.chains, generator=generator,
            device=device, dtype=torch.float64, integrator=spec.integrator,
            trajectory_length=spec.trajectory_length, n_therm=spec.n_therm,
            target_acceptance=spec.target_acceptance, thin=spec.thin,
            progress=report, should_stop=should_stop,
        )
    except SamplingCancelled as exc:
        raise JobCancelled(str(exc)) from exc
    observables = summarize(result.configs, dim=spec.dim, kappa=spec.kappa, lam=spec.lam)
    seconds = time.perf_counter() - start
    obs = {name: est.as_dict() for name, est in observables.items()}
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "ensemble.h5"
    configs = result.configs.transpose(0, 1).reshape(-1, *result.configs.shape[2:])
    write_ensemble(
        out,
        configs.cpu().numpy(),
        EnsembleMeta(
            dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam, method="hmc",
            seeds={"seed": spec.seed},
            sampler={
                **spec.model_dump(), "step_size": result.step_size,
                "n_leapfrog": result.n_leapfrog, "thin": result.thin, "start": result.start,
                "layout": "chain-major: configs[c*T + t] is chain c, time t",
            },
            acceptance=float(result.acceptance), ess=None, thinning=int(result.thin),
            observables=obs, code_version=__version__,
        ),
    )
    summary = {
        "theory": {"dim": spec.dim, "L": spec.L, "kappa": spec.kappa, "lam": spec.lam},
        "acceptance": float(result.acceptance),
        "observables": obs,
        "hmc": {
            "chains": spec.chains, "samples_per_chain": int(result.configs.shape[0]),
            "thin": int(result.thin), "step_size": float(result.step_size),
            "n_leapfrog": int(result.n_leapfrog), "dH_rms": float(result.dH_rms),
            "exp_mdH": [float(result.exp_mdH_mean), float(result.exp_mdH_error)],
            "start": result.start,
        },
        "seconds": seconds,
        "out": str(out),
    }
    return JobResult("hmc", summary, ensemble=out)


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
        from core.jobs import run_train_job

        return run_train_job(spec, workdir=workdir, progress=progress, should_stop=should_stop)
    if isinstance(spec, SampleSpec):
        from core.jobs import run_sample_job

        return run_sample_job(
            spec, workdir=workdir, progress=progress, should_stop=should_stop,
            model_resolver=model_resolver,
        )
    raise TypeError(f"unknown job spec {type(spec).__name__}")

"""Direct sampling jobs: HMC or the cluster algorithm on the fine lattice, the reference
every flow is compared with; writes ``workdir/ensemble.h5`` (configs and the per-configuration
series ``series_*`` chain-major, core.physics.lattice.series)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from core import __version__
from core.jobs.protocol import JobCancelled, JobResult, ProgressFn, StopFn
from core.jobs.runtime import progress_hook, resolve_device
from core.jobs.specs import HmcSpec
from core.physics.control import SamplingCancelled
from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.physics.io.pyerrors_json import SERIES_PREFIX
from core.physics.lattice.observables import Measurements, measure, summarize_measurements
from core.physics.lattice.series import chain_major, observable_series
from core.physics.mcmc.cluster import ClusterParams, run_cluster
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.stats.chains import chain_consistency


def _chain_checks(m: Measurements) -> dict[str, Any]:
    """Chains against each other for |M| and S/V (domain walls in the broken phase).

    ``consistent``: False if either observable is inconsistent, None (no verdict, with the
    reasons) if either is too short to judge (core.physics.stats.chains), else True."""
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
        extras={f"{SERIES_PREFIX}{k}": v for k, v in chain_major(observable_series(
            configs_tc, dim=spec.dim, kappa=spec.kappa, lam=spec.lam, meas=meas)).items()},
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
    params = HmcParams(
        n_samples=spec.n_samples, chains=spec.chains, n_therm=spec.n_therm,
        integrator=spec.integrator, trajectory_length=spec.trajectory_length,
        target_acceptance=spec.target_acceptance, thin=spec.thin,
        max_seconds=spec.max_seconds, dtype=torch.float64,
    )
    result = run_hmc(dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam, params=params,
                     generator=generator, device=device,
                     progress=progress_hook(progress, "hmc"), should_stop=should_stop)
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
    params = ClusterParams(
        n_samples=spec.n_samples, chains=spec.chains, n_therm=spec.n_therm, thin=spec.thin,
        clusters_per_sweep=spec.clusters_per_sweep, max_seconds=spec.max_seconds,
        dtype=torch.float64,
    )
    result = run_cluster(dim=spec.dim, L=spec.L, kappa=spec.kappa, lam=spec.lam,
                         params=params, generator=generator, device=device,
                         progress=progress_hook(progress, "cluster"), should_stop=should_stop)
    return result.configs, {
        "algorithm": "cluster", "acceptance": float(result.acceptance),
        "thin": int(result.thin), "step_size": float(result.step_size),
        "clusters_per_sweep": int(result.clusters_per_sweep),
        "cluster_fraction": float(result.cluster_fraction), "start": result.start,
    }



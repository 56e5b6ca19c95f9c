"""Sampling jobs: a Metropolis-corrected fine ensemble from a trained flow, eq. (10);
writes ``workdir/ensemble.h5`` with log q, the action and the accept flags, the chain's
per-configuration series (``series_*``, core.physics.lattice.series) and the proposals'
log w̃ and ∂S/∂c; the summary carries log Z and f (core.jobs.free_energy, DESIGN §10)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import __version__
from core.jobs.free_energy import sample_free_energy
from core.jobs.protocol import JobCancelled, JobError, JobResult, ProgressFn, StopFn
from core.jobs.runtime import progress_hook, resolve_device
from core.jobs.specs import SampleSpec
from core.physics.control import SamplingCancelled
from core.physics.exact.coarse_samplers import coarse_sampler_error
from core.physics.exact.sampler import SampleResult, sample
from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.physics.io.flow_files import read_config
from core.physics.io.pyerrors_json import PROPOSAL_LOG_W, SERIES_PREFIX
from core.physics.lattice.series import observable_series
from core.physics.stats.gamma import gamma_method


def run_sample_job(
    spec: SampleSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    model_resolver: Callable[[str], Path] | None = None,
    cache_dir: Path | None = None,
) -> JobResult:
    """Metropolis-corrected fine ensemble from a model; writes ``workdir/ensemble.h5``.
    ``cache_dir`` keeps log Z_c of the coarse theory (None: the model's directory)."""
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
                     device=spec.device, progress=progress_hook(progress, "sample"),
                     should_stop=should_stop, coarse_sampler=spec.coarse_sampler,
                     check_solver=spec.log_z)
    except SamplingCancelled as exc:  # in the coarse chains or the push
        raise JobCancelled(str(exc)) from exc
    obs = {k: v.as_dict() for k, v in res.observables.items()}
    rew = {k: v.as_dict() for k, v in res.reweighted.items()}
    config = json.loads((model_dir / "config.json").read_text())
    dim, size = int(config["dim"]), int(config["fine_L"])
    free = None
    if spec.log_z:
        try:
            free = sample_free_energy(
                res, dim=dim, L=size, coarse_L=config.get("coarse_L"), n_samples=spec.n_samples,
                seed=spec.seed, cache_dir=cache_dir or model_dir, reweight_to=spec.reweight_to,
                algorithm=spec.coarse_sampler, device=spec.device,
                progress=progress_hook(progress, "log Z"), should_stop=should_stop)
        except SamplingCancelled as exc:
            raise JobCancelled(str(exc)) from exc
    series = observable_series(res.configs, dim=dim, kappa=res.fine.kappa, lam=res.fine.lam)
    ds = gamma_method(series["dS_dkappa"])
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
            code_version=__version__, free_energy=free,
        ),
        extras={"log_q": res.log_q.cpu().numpy(), "action": res.action.cpu().numpy(),
                "accepted": res.accepted.cpu().numpy(), **_series_datasets(res, series)},
    )
    summary = {
        "theory": {"dim": dim, "L": size, "kappa": res.fine.kappa, "lam": res.fine.lam},
        "acceptance": res.acceptance, "ess": res.ess, "ode_consistency": res.ode_consistency,
        "observables": obs, "reweighted": rew, "seconds": res.seconds, "out": str(out),
        "coarse": {"sampler": res.coarse_sampler, "thin": res.thin,
                   "tau_int": res.coarse_tau_int},
        "dS_dkappa": {"mean": ds.mean, "error": ds.error, "tau_int": ds.tau_int},
        "free_energy": free,
    }
    return JobResult("sample", summary, ensemble=out)


def _series_datasets(res: SampleResult, series: dict[str, Any]) -> dict[str, Any]:
    """``series_<name>`` of the chain and the proposals' log w̃, ∂S/∂κ, ∂S/∂λ (float64)."""
    out = {f"{SERIES_PREFIX}{k}": v.reshape(-1) for k, v in series.items()}
    w = res.proposal_weights
    if w is not None:
        out.update({PROPOSAL_LOG_W: w.log_w.numpy(), "proposal_dS_dkappa": w.dS_dkappa.numpy(),
                    "proposal_dS_dlam": w.dS_dlam.numpy()})
    return out



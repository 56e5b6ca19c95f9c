"""Sampling jobs: a Metropolis-corrected fine ensemble from a trained flow, eq. (10);
writes ``workdir/ensemble.h5`` with log q, the action and the accept flags."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from core import __version__
from core.jobs.protocol import JobCancelled, JobError, JobResult, ProgressFn, StopFn
from core.jobs.runtime import progress_hook, resolve_device
from core.jobs.specs import SampleSpec
from core.physics.control import SamplingCancelled
from core.physics.exact.coarse_samplers import coarse_sampler_error
from core.physics.exact.sampler import sample
from core.physics.io.ensemble import EnsembleMeta, write_ensemble
from core.physics.io.flow_files import read_config


def run_sample_job(
    spec: SampleSpec,
    *,
    workdir: Path,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    model_resolver: Callable[[str], Path] | None = None,
) -> JobResult:
    """Metropolis-corrected fine ensemble from a model; writes ``workdir/ensemble.h5``."""
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



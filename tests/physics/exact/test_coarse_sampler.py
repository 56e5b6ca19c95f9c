"""The coarse sampler of flow sampling: ``coarse_sampler="cluster"`` draws
the coarse fields with the cluster algorithm (core.physics.mcmc.cluster) instead of HMC; the
result, the job summary and the HDF5 attributes say which ran; a model without a (usable)
coarse lattice is refused naming ``coarse_sampler``; a cancel in the coarse chains cancels
the job."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from core.jobs.protocol import JobCancelled, JobError
from core.jobs.sample_job import run_sample_job
from core.jobs.specs import SampleSpec
from core.physics.exact.coarse_samplers import coarse_sampler_error
from core.physics.exact.sampler import COARSE_THIN_TAUS, sample
from core.physics.io import read_ensemble
from tests.physics.exact.flows import untrained_flow


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return untrained_flow(tmp_path_factory.mktemp("coarse") / "m")


@pytest.mark.slow
def test_cluster_path_is_taken_and_recorded(model: Path) -> None:
    kw = dict(n_samples=64, seed=7, chains=8)
    cl = sample(model, coarse_sampler="cluster", **kw)  # type: ignore[arg-type]
    hmc = sample(model, **kw)  # type: ignore[arg-type]
    assert cl.coarse_sampler == "cluster" and hmc.coarse_sampler == "hmc"
    assert cl.configs.shape == hmc.configs.shape == (64, 8, 8)
    assert cl.thin >= 1 and cl.coarse_tau_int is not None and cl.coarse_tau_int > 0
    # both coarse samplers feed the Metropolis chain every ⌈4 τ_int⌉ (COARSE_THIN_TAUS)
    for out in (cl, hmc):
        assert out.coarse_tau_int is not None
        assert out.thin == max(1, math.ceil(COARSE_THIN_TAUS * out.coarse_tau_int))
    # same seed, same generators: only the coarse sampler differs, and so do the proposals
    assert not torch.equal(cl.log_q, hmc.log_q)


@pytest.mark.slow
def test_job_records_the_coarse_sampler_in_summary_and_hdf5(model: Path, tmp_path: Path) -> None:
    spec = SampleSpec(model=str(model), n_samples=32, chains=4, seed=1, coarse_sampler="cluster")
    res = run_sample_job(spec, workdir=tmp_path)
    assert res.summary["coarse"]["sampler"] == "cluster" and res.summary["coarse"]["thin"] >= 1
    assert res.ensemble is not None
    sampler = read_ensemble(res.ensemble).meta.sampler
    assert sampler["coarse_sampler"] == "cluster" and sampler["thin_coarse"] >= 1


def test_cancel_in_the_coarse_cluster_chains_cancels_the_job(model: Path, tmp_path: Path) -> None:
    spec = SampleSpec(model=str(model), n_samples=32, chains=4, coarse_sampler="cluster")
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 5  # inside the cluster thermalisation, before any push

    with pytest.raises(JobCancelled, match="sweeps"):
        run_sample_job(spec, workdir=tmp_path, should_stop=stop)
    assert not (tmp_path / "ensemble.h5").exists()


def test_baseline_or_odd_coarse_L_refused_naming_coarse_sampler(tmp_path: Path) -> None:
    base = untrained_flow(tmp_path / "b", kind="baseline")
    with pytest.raises(ValueError, match="coarse_sampler='cluster': a baseline model"):
        sample(base, n_samples=8, seed=0, coarse_sampler="cluster")
    spec = SampleSpec(model=str(base), n_samples=8, coarse_sampler="cluster")
    with pytest.raises(JobError, match="coarse_sampler='cluster'"):
        run_sample_job(spec, workdir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    assert "coarse_L=3 is odd" in str(coarse_sampler_error("cluster", "super_resolving", 3))
    assert coarse_sampler_error("cluster", "super_resolving", 4) is None
    assert coarse_sampler_error("hmc", "baseline", None) is None


@pytest.mark.slow
def test_flow_with_cluster_coarse_sampler_matches_fine_hmc(tmp_path: Path) -> None:
    """d = 2, L = 8 from 4×4, κ = 0.25 (near-critical), λ = 0.01: the IR flow of
    tests/physics/exact/test_exactness.py (60 steps, k = 3) pushing cluster-algorithm coarse
    fields, then Metropolis, agrees with direct fine HMC within 3σ (combined Γ-method
    errors) for |M|, χ and S/V — as it must, eq. (10) corrects any exact coarse sampler."""
    from core.jobs.specs import TrainSpec
    from core.jobs.train_plan import train_plan
    from core.physics.lattice.observables import summarize
    from core.physics.mcmc.hmc import HmcParams, run_hmc
    from core.physics.training.api import train

    kappa, lam = 0.25, 0.01
    spec = TrainSpec(method="ir", dim=2, L=8, kappa=kappa, lam=lam, steps=60, seed=1,
                     kernel_size=3, langevin_therm=5000, eval_samples=512)
    trained = train(train_plan(spec), workdir=tmp_path)
    out = sample(trained.model_dir, n_samples=8000, seed=2, chains=32, coarse_sampler="cluster")
    assert out.coarse_sampler == "cluster" and out.acceptance > 0.2, out.acceptance
    assert int(out.accepted.sum()) > 200
    ref = run_hmc(dim=2, L=8, kappa=kappa, lam=lam, generator=torch.Generator().manual_seed(3),
                  params=HmcParams(n_samples=8000, chains=32, n_therm=300))
    want = summarize(ref.configs, dim=2, kappa=kappa, lam=lam)
    for key in ("abs_magnetization", "susceptibility", "action_density"):
        x, y = out.observables[key], want[key]
        sigma = (x.error**2 + y.error**2) ** 0.5
        assert abs(x.mean - y.mean) < 3 * sigma, (key, x, y)

"""Exactness does not depend on training quality (paper eq. 10; DESIGN §6).

Flow + independence Metropolis ensembles at L = 8 from L = 4 (d = 2, λ = 0.01) reproduce
direct fine-lattice HMC within 3σ (combined Γ-method errors of both chains) for |M|, χ and
S/V in the symmetric (κ = 0.2), near-critical (κ = 0.25) and broken (κ = 0.3) phases —
for a modestly trained IR flow (60 steps, acceptance ≈ 0.4-0.6) and for a deliberately
under-trained one (2, 5, 25 steps at κ = 0.2, 0.25, 0.3: acceptance ≈ 5-12 %; how fast a
flow learns depends on κ — measured acceptance after 5 steps: 0.36, 0.054, 0.003 — and a
chain with only a few dozen accepted moves has no trustworthy Γ-method error). Everything
runs through the public entries: train() → model directory → sample() (coarse HMC, push,
Metropolis).

Budget per case: training (≤ 60 steps, Langevin thermalisation 5000 steps), 8000
proposals (16000 under-trained, so that the stuck chain still has hundreds of accepted
moves) and 8000 reference HMC configurations (ordered start where the constant-field
potential is a double well, core.physics.mcmc.hmc), ≈ 15-30 s. Plus the untrained-flow case
through the low-level API (identity CNF; acceptance ≈ 2 %)."""

from pathlib import Path

import pytest
import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.metropolis import independence_metropolis
from core.physics.exact.sampler import push, sample
from core.physics.flows.architecture import FieldConfig, LevelConfig
from core.physics.flows.rg_flow import SuperResolvingFlow
from core.physics.flows.solver import SolverConfig
from core.physics.lattice.couplings import Couplings
from core.physics.lattice.observables import Estimate, summarize
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.training.api import train

KEYS = ("abs_magnetization", "susceptibility", "action_density")
LAM = 0.01


def _agree(a: dict[str, Estimate], b: dict[str, Estimate]) -> None:
    for key in KEYS:
        x, y = a[key], b[key]
        sigma = (x.error**2 + y.error**2) ** 0.5
        assert abs(x.mean - y.mean) < 3 * sigma, (key, x, y)


def _reference(kappa: float, seed: int) -> dict[str, Estimate]:
    ref = run_hmc(dim=2, L=8, kappa=kappa, lam=LAM, generator=torch.Generator().manual_seed(seed),
                  params=HmcParams(n_samples=8000, chains=32, n_therm=300))
    return summarize(ref.configs, dim=2, kappa=kappa, lam=LAM)


CASES = [(0.2, 60), (0.25, 60), (0.3, 60), (0.2, 2), (0.25, 5), (0.3, 25)]


@pytest.mark.slow
@pytest.mark.parametrize(("kappa", "steps"), CASES,
                         ids=[f"{k}-{'trained' if s == 60 else 'undertrained'}" for k, s in CASES])
def test_flow_metropolis_matches_fine_hmc(tmp_path: Path, kappa: float, steps: int) -> None:
    # k = 3: the under-trained step counts above were calibrated with it (with k = 5, the
    # default, the κ = 0.3 chain after 25 steps accepted only 12 of 16 000)
    spec = TrainSpec(method="ir", dim=2, L=8, kappa=kappa, lam=LAM, steps=steps, seed=1,
                     kernel_size=3, langevin_therm=5000, eval_samples=512)
    res = train(train_plan(spec), workdir=tmp_path)
    n = 8000 if steps == 60 else 16000
    out = sample(res.model_dir, n_samples=n, seed=2, chains=32)
    assert out.fine == Couplings(kappa, LAM)
    if steps == 60:
        assert out.acceptance > 0.2, out.acceptance  # training did something
    else:
        assert out.acceptance < 0.3, out.acceptance  # ...and this one is genuinely poor
    assert int(out.accepted.sum()) > 200  # enough moves for a Γ-method error
    _agree(out.observables, _reference(kappa, seed=3))


@pytest.mark.slow
def test_untrained_flow_with_metropolis_matches_fine_hmc() -> None:
    """Identity CNF, σ from the coarse std: acceptance ≈ 2 %, τ_int ~ 10²."""
    kappa = 0.2
    g = torch.Generator().manual_seed(0)
    level = LevelConfig(FieldConfig(2, 2), SolverConfig(method="rk4", steps=8))
    flow = SuperResolvingFlow.from_config(level, 4, 8, g).float()
    coarse = run_hmc(dim=2, L=4, kappa=kappa, lam=LAM, generator=g,
                     params=HmcParams(n_samples=8000, chains=32, n_therm=200))
    phi_c = coarse.configs.reshape(-1, 4, 4)
    flow.init_sigma(phi_c[:256].float(), g)
    props = push(flow, phi_c, Couplings(kappa, LAM), Couplings(kappa, LAM), g)
    assert props.log_w.dtype == torch.float64
    mc = independence_metropolis(props.log_w, g)
    assert 0.0 < mc.acceptance < 0.2  # an untrained flow: most proposals are rejected
    obs = summarize(mc.chain(props.phi).double()[:, None], dim=2, kappa=kappa, lam=LAM)
    _agree(obs, _reference(kappa, seed=4))


NEW_CASES = [("hollow+conditional", 8, 0.25, 40), ("hollow+conditional", 8, 0.25, 7),
             ("grown", 16, 0.2, 20)]


@pytest.mark.slow
@pytest.mark.parametrize(("flow", "L", "kappa", "steps"), NEW_CASES,
                         ids=["hollow-conditional-trained", "hollow-conditional-undertrained",
                              "grown-L16"])
def test_new_fields_bases_and_grown_stacks_stay_exact(tmp_path: Path, flow: str, L: int,
                                                      kappa: float, steps: int) -> None:
    """The hollow field (Chen & Duvenaud 2019), the conditional base and a stack
    grown level by level (core.physics.training.grow, via the pipeline as `srflow train` runs it)
    keep flow + Metropolis equal to direct HMC within 3σ, trained or not."""
    from core.jobs.train_job import run_train_job

    # k = 3 for the hollow cases (with k = 5 the under-trained chain accepted 514 of 16 000 at
    # τ_int ≈ 170). Under-trained = 7 steps, acceptance ≈ 0.2, ESS/N ≈ 0.06: since the coarse
    # chains are thinned by 4 τ_int, 3 steps gave a chain stuck at τ_int(|M|) ≈ 625 (5 and 6
    # steps: 127, 62; 7: 12), whose Γ-method error means nothing — hence the bound below.
    extra = ({"field": "hollow", "base": "conditional", "kernel_size": 3}
             if flow != "grown" else {"coarse_L": 4})  # grown 4 → 8 → 16 (8×8 is one level)
    spec = TrainSpec(method="ir", dim=2, L=L, kappa=kappa, lam=LAM, steps=steps, seed=1,
                     langevin_therm=5000, eval_samples=512, **extra)  # type: ignore[arg-type]
    res = run_train_job(spec, workdir=tmp_path)
    assert res.model_dir is not None
    if flow == "grown":
        assert [g["L"] for g in res_grow(res.model_dir)] == [8, 16]
    n = 16000 if steps < 10 else 8000
    out = sample(res.model_dir, n_samples=n, seed=2, chains=32)
    # the training monitor's threshold (0.5 nats): beyond it exactness claims do not hold
    assert int(out.accepted.sum()) > 200 and out.ode_consistency < 0.5
    if steps < 10:
        assert out.acceptance < 0.3, out.acceptance
    # a trustworthy Γ-method error needs N ≫ τ_int (Wolff 2004): ≥ 100 τ_int for each
    assert all(out.observables[k].tau_int <= n / 100 for k in KEYS), out.observables
    ref = run_hmc(dim=2, L=L, kappa=kappa, lam=LAM, generator=torch.Generator().manual_seed(5),
                  params=HmcParams(n_samples=8000, chains=32, n_therm=300))
    _agree(out.observables, summarize(ref.configs, dim=2, kappa=kappa, lam=LAM))


def res_grow(model_dir: Path) -> list[dict]:
    import json

    return list(json.loads((model_dir / "metrics.json").read_text())["grow"])

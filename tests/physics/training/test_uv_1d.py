"""d = 1 UV-matching (paper Appendix A): coarse L = 8 at κ_L = 0.1, λ = 0.01 (fixed, exact
HMC) → fine L = 16 with learnable fine κ. Flow + Metropolis must reproduce the exact
transfer-matrix ⟨φ²⟩ and χ at the *learned* fine couplings (whatever they are: exactness
holds for the target the model records). Then the trained level is iterated to L = 64
with retraining (figs. 8-9): the ESS-maximising coupling is found at every level and
retraining does not lose ESS/N.

Budget: 80 training steps (batch 64, ≈ 10 s), 8000 proposals, transfer matrix by
800-point quadrature; the iteration ≈ 20 s."""

from pathlib import Path

import pytest

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import sample
from core.physics.io.flow_files import load_flow
from core.physics.lattice.couplings import Couplings
from core.physics.training.api import train
from core.physics.training.uv_iterate import IterateConfig, iterate_uv, save_iterated
from tests.physics.mcmc.transfer_matrix import transfer_matrix_exact

LAM = 0.01


@pytest.fixture(scope="module")
def uv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = TrainSpec(method="uv", dim=1, L=16, coarse_L=8, kappa=0.1, lam=LAM, steps=80,
                     seed=0, eval_samples=1024)
    res = train(train_plan(spec), workdir=tmp_path_factory.mktemp("uv"))
    assert res.ess > 0.5, res
    return res.model_dir


@pytest.mark.slow
def test_uv_flow_metropolis_matches_transfer_matrix(uv_model: Path) -> None:
    out = sample(uv_model, n_samples=8000, seed=1, chains=32)
    kappa = out.fine.kappa
    assert out.fine.lam == LAM and kappa != 0.1  # the fine coupling learned
    assert out.acceptance > 0.3
    exact = transfer_matrix_exact(16, kappa, LAM)
    for key, value in (("phi2", float(exact.G[0])), ("susceptibility", exact.chi)):
        est = out.observables[key]
        assert abs(est.mean - value) < 3 * est.error, (key, est, value, kappa)
        assert est.error < 0.02 * value  # errors small enough to mean something


@pytest.mark.slow
def test_uv_iteration_to_finer_lattices(uv_model: Path, tmp_path: Path) -> None:
    loaded = load_flow(uv_model)
    c = loaded.couplings
    coarse = Couplings(c["coarse_kappa"], c["coarse_lam"])
    fine = Couplings(c["fine_kappa"], c["fine_lam"])
    it = iterate_uv(loaded.flow, coarse, fine, target_L=64,
                    cfg=IterateConfig(n_rt=30, n_eval=1024, window=5), seed=0)
    assert [r.L for r in it.levels] == [32, 64] and it.flow.fine_L == 64
    for r in it.levels:
        assert 0 < r.steps <= 30 and r.ess > 0.3, r
        assert r.ess >= r.ess_before - 0.05, r  # retraining at lr/5 does not lose ESS
    saved = load_flow(save_iterated(tmp_path / "m64", it, loaded.config, str(uv_model)))
    assert saved.config.fine_L == 64 and saved.config.levels == 3
    assert saved.couplings["fine_kappa"] == it.levels[-1].kappa

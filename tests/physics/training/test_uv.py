"""UV-matching pieces: the fine coupling learns E_q[∂S/∂c] = E_p[∂S/∂c] (identity map from
a 4×4 HMC lattice at κ=0.2: the exact answer is κ=0.2), and the ESS-maximising coupling scan
finds the coupling that generated exact proposals."""

import types

import pytest
import torch
from torch import nn

from core.physics.lattice.action import action
from core.physics.lattice.couplings import Couplings
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.logz import LogZConfig
from core.physics.training.problem import Matching
from core.physics.training.trainer import Trainer, TrainerConfig
from core.physics.training.uv import UVConfig, UVSource, ess_maximising_kappa


class IdentityFlow(nn.Module):
    def forward(self, phi: torch.Tensor, generator: torch.Generator, solver: object = None):
        return types.SimpleNamespace(phi=phi, log_q_rel=torch.zeros(phi.shape[0]))


def test_scan_recovers_generating_coupling() -> None:
    res = run_hmc(dim=2, L=4, kappa=0.22, lam=0.01, generator=torch.Generator().manual_seed(0),
                  params=HmcParams(n_samples=2000, chains=20, n_therm=100, thin=2))
    phi = res.configs.reshape(-1, 4, 4)
    log_q = -action(phi, 0.22, 0.01)  # exact density up to a constant
    scan = ess_maximising_kappa(phi, log_q, 0.01, kappa0=0.18, width=0.08)
    assert abs(scan.best_kappa - 0.22) < 1e-3 and scan.best_ess > 0.999
    assert scan.ess[0] < 0.5 and scan.ess[-1] < 0.9


@pytest.mark.slow
def test_uv_fine_coupling_converges_to_exact_match() -> None:
    gens = {k: torch.Generator().manual_seed(20 + i)
            for i, k in enumerate(["flow", "hmc", "logz", "gap"])}
    fine = LearnableCouplings(Couplings(0.15, 0.01))
    coarse = LearnableCouplings(Couplings(0.2, 0.01), learn_kappa=False)
    src = UVSource(dim=2, coarse_L=4, fine_L=4, batch=64, coarse=coarse.values(), fine=fine,
                   generator=gens["hmc"], logz_generator=gens["logz"], dtype=torch.float64,
                   config=UVConfig(logz=LogZConfig(n_configs=1000, chains=20, n_therm=100)))
    trainer = Trainer(Matching(IdentityFlow(), coarse, fine, src, gens["flow"]),
                      TrainerConfig(steps=60, gap_every=0, checkpoint_every=0), gens)
    tail = trainer.run().curve[-20:]
    kappa = sum(r.fine_kappa for r in tail) / 20
    assert abs(kappa - 0.2) < 0.01, kappa
    assert sum(r.ess for r in tail) / 20 > 0.9

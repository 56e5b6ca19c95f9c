"""D^(II) sign bookkeeping (core.physics.training.loss): with an identity "flow" from a 4×4 coarse
lattice to a 4×4 fine one the optimal coarse coupling is exactly the fine one. With the
correct +E_{p_L}[∂S_L/∂κ_L] term κ_L converges there (moved only by the pathwise gradient
through Langevin); dropping the term leaves −E[∂S_L/∂κ_L] = 2E[Σφφ] > 0 uncancelled and κ_L
runs off towards the minimum of log Z_L (κ = 0) while D^(I) falls below its correct value;
flipping it doubles the drive. Budget: 50 steps × 200 Langevin steps, batch 64 (~3 s each).
"""

import types

import pytest
import torch
from torch import nn

from core.physics.lattice.couplings import Couplings
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.ir import IRConfig, IRSource
from core.physics.training.logz import LogZConfig
from core.physics.training.problem import Matching
from core.physics.training.trainer import Trainer, TrainerConfig


class IdentityFlow(nn.Module):
    def forward(self, phi: torch.Tensor, generator: torch.Generator, solver: object = None):
        return types.SimpleNamespace(phi=phi, log_q_rel=torch.zeros(phi.shape[0]))


def _train(sign: float) -> tuple[float, float, float]:
    gens = {k: torch.Generator().manual_seed(i)
            for i, k in enumerate(["flow", "langevin", "logz", "gap"])}
    coarse = LearnableCouplings(Couplings(0.15, 0.01))
    fine = LearnableCouplings(Couplings(0.2, 0.01), learn_kappa=False)
    cfg = IRConfig(n_therm=2000, n_between=200, logz_sign=sign,
                   logz=LogZConfig(n_configs=1000, chains=20, n_therm=100))
    src = IRSource(dim=2, coarse_L=4, batch=64, coarse=coarse, generator=gens["langevin"],
                   logz_generator=gens["logz"], config=cfg, dtype=torch.float64)
    trainer = Trainer(Matching(IdentityFlow(), coarse, fine, src, gens["flow"]),
                      TrainerConfig(steps=50, gap_every=0, checkpoint_every=0), gens)
    tail = trainer.run().curve[-20:]
    return (sum(r.coarse_kappa for r in tail) / 20, sum(r.loss for r in tail) / 20,
            sum(r.ess for r in tail) / 20)


@pytest.mark.slow
def test_dropping_or_flipping_logz_term_makes_kappa_run_away() -> None:
    k_ok, d1_ok, ess_ok = _train(+1.0)
    k_drop, d1_drop, ess_drop = _train(0.0)
    k_flip, _, ess_flip = _train(-1.0)
    assert abs(k_ok - 0.2) < 0.015 and ess_ok > 0.95  # converges to the exact answer
    assert k_drop < 0.16 and k_flip < k_drop - 0.02  # runs off downwards, faster if flipped
    assert d1_drop < d1_ok - 0.1  # the D^(I) estimate falls below the correct value
    assert ess_flip < ess_drop < ess_ok - 0.2

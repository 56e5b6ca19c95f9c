"""The log Z gradient (eq. 34) with reweighting (eq. 36) on the coarse 4×4 lattice (HMC)."""

import math

import torch

from core.physics.lattice.couplings import Couplings
from core.physics.training.logz import LogZConfig, LogZGradient


def _provider(c: Couplings, seed: int) -> LogZGradient:
    return LogZGradient(dim=2, L=4, couplings=c, generator=torch.Generator().manual_seed(seed),
                        config=LogZConfig(n_configs=3000, chains=30))


def test_reweighted_gradient_agrees_with_fresh_estimate() -> None:
    # set drawn at κ0 = 0.25, reweighted to κ = 0.254 (ESS/N ≈ 0.93 > R_W), against a
    # fresh HMC set at κ; combined Γ-method errors, 3σ.
    lz = _provider(Couplings(0.25, 0.01), 0)
    first = lz.expectation(Couplings(0.25, 0.01))
    target = Couplings(0.254, 0.01)
    reweighted = lz.expectation(target)
    assert first.resampled and not reweighted.resampled and reweighted.ess > 0.85
    fresh = _provider(target, 1).expectation(target)
    for a, b, ea, eb in ((reweighted.dS_dkappa, fresh.dS_dkappa, reweighted.error_kappa,
                          fresh.error_kappa),
                         (reweighted.dS_dlam, fresh.dS_dlam, reweighted.error_lam,
                          fresh.error_lam)):
        assert abs(a - b) < 3 * math.hypot(ea, eb), (a, b, ea, eb)
    # the reweighting moved the estimate: E[∂S/∂κ] = −2E[Σφφ] falls with κ
    assert reweighted.dS_dkappa < first.dS_dkappa


def test_resampling_triggers_at_r_w() -> None:
    lz = _provider(Couplings(0.25, 0.01), 2)
    lz.expectation(Couplings(0.25, 0.01))
    assert lz.n_resamples == 1
    # scan κ for the first coupling whose reweighting ESS/N drops below R_W
    kappas = [0.25 + 0.001 * k for k in range(1, 40)]
    ess = [lz.reweighting_ess(Couplings(k, 0.01)) for k in kappas]
    first_below = next(i for i, e in enumerate(ess) if e < 0.85)
    assert first_below > 0
    just_above = lz.expectation(Couplings(kappas[first_below - 1], 0.01))
    assert not just_above.resampled and lz.n_resamples == 1
    below = lz.expectation(Couplings(kappas[first_below], 0.01))
    assert below.resampled and lz.n_resamples == 2 and below.ess == 1.0
    assert lz.reference == Couplings(kappas[first_below], 0.01)


def test_state_roundtrip_reproduces_the_next_resample() -> None:
    g = torch.Generator().manual_seed(3)
    lz = LogZGradient(dim=2, L=4, couplings=Couplings(0.2, 0.01), generator=g,
                      config=LogZConfig(n_configs=300, chains=10, n_therm=50))
    lz.expectation(Couplings(0.2, 0.01))
    state, gen_state = lz.state_dict(), g.get_state()
    a = lz.expectation(Couplings(0.3, 0.01))
    g2 = torch.Generator()
    lz2 = LogZGradient(dim=2, L=4, couplings=Couplings(0.2, 0.01), generator=g2,
                       config=LogZConfig(n_configs=300, chains=10, n_therm=50))
    lz2.load_state_dict(state)
    g2.set_state(gen_state)  # generators are restored last: construction draws from them
    b = lz2.expectation(Couplings(0.3, 0.01))
    assert a.resampled and b.resampled and a == b

"""HMC sampler: layout, reproducibility, cancellation, starts, step-size tuning, exactness."""

from __future__ import annotations

import math

import pytest
import torch

from core.physics.mcmc import (
    HmcParams,
    HMCSampler,
    SamplingCancelled,
    is_broken_mean_field,
    resolve_start,
    run_hmc,
)


def _run(**kw):
    """run_hmc at d = 2, L = 4, κ = 0.2, λ = 0.1 with 4 chains; ``kw`` overrides the lattice,
    the hooks or HmcParams fields."""
    lattice = {"dim": 2, "L": 4, "kappa": 0.2, "lam": 0.1,
               "generator": torch.Generator().manual_seed(0)}
    for key in ("dim", "L", "kappa", "lam", "generator", "device", "progress", "should_stop"):
        if key in kw:
            lattice[key] = kw.pop(key)
    params = HmcParams(**{"n_samples": 10, "chains": 4, "n_therm": 20, "thin": 2, **kw})
    return run_hmc(params=params, **lattice)


def test_layout_counts_and_dtype():
    res = _run(dtype=torch.float32)
    assert res.configs.shape == (3, 4, 4, 4)  # ceil(10/4) per chain, time-major
    assert res.configs.dtype == torch.float32 and res.configs.device.type == "cpu"
    assert res.thin == 2 and res.tau_int_pilot is None
    assert math.isclose(res.step_size * res.n_leapfrog, 1.0)
    assert 0.0 < res.acceptance <= 1.0 and res.seconds > 0
    assert res.dH_rms >= abs(res.dH_mean)


def test_reproducible_with_the_same_seed():
    a, b, c = _run(), _run(), _run(generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.configs, b.configs)
    assert not torch.equal(a.configs, c.configs)


def test_pilot_thinning():
    res = _run(thin=None, n_therm=50, dim=1, L=8, kappa=0.45, lam=0.0)
    assert res.tau_int_pilot is not None and res.tau_int_pilot >= 0.5
    assert res.thin == max(1, math.ceil(2 * res.tau_int_pilot))
    assert res.thin > 1  # κ close to 1/2 in d=1: slow modes
    # the same pilot (same seed), thinned by 4 τ_int as flow sampling asks
    wide = _run(thin=None, thin_taus=4.0, n_therm=50, dim=1, L=8, kappa=0.45, lam=0.0)
    assert wide.tau_int_pilot == res.tau_int_pilot
    assert wide.thin == max(1, math.ceil(4 * res.tau_int_pilot)) > res.thin


def test_progress_and_cancel():
    calls: list[tuple[int, int, dict]] = []
    _run(progress=lambda d, t, info: calls.append((d, t, info)))
    assert calls and calls[-1][0] == calls[-1][1] == 20 + 3 * 2
    assert {c[2]["phase"] for c in calls} == {"thermalise", "sample"}
    count = iter(range(1000))
    with pytest.raises(SamplingCancelled):
        _run(should_stop=lambda: next(count) >= 7)


def test_ordered_and_auto_start():
    assert is_broken_mean_field(2, 0.3, 0.02) and not is_broken_mean_field(2, 0.2, 0.02)
    assert resolve_start("auto", 2, 0.3, 0.02) == "ordered"
    assert resolve_start("auto", 2, 0.2, 0.02) == "random"
    with pytest.raises(ValueError, match="start"):
        resolve_start("hot", 2, 0.2, 0.02)  # type: ignore[arg-type]
    s = HMCSampler(dim=2, L=6, chains=64, generator=torch.Generator().manual_seed(0),
                   kappa=0.3, lam=0.02, start="auto")
    v = math.sqrt((4 * 0.3 + 0.04 - 1) / 0.04)  # classical minimum
    m = s.phi.mean(dim=(1, 2))
    assert torch.allclose(s.phi, m[:, None, None].expand_as(s.phi))
    assert torch.allclose(m.abs(), torch.full_like(m, v))
    assert (m > 0).any() and (m < 0).any()


def test_step_size_tuned_then_frozen():
    s = HMCSampler(dim=2, L=8, chains=32, generator=torch.Generator().manual_seed(2),
                   kappa=0.2, lam=0.1, integrator="leapfrog", trajectory_length=2.0)
    therm = s.thermalise(150, target_acceptance=0.7)
    assert therm.step_size == s.step_size and math.isclose(s.step_size * s.n_leapfrog, 2.0)
    acc = torch.stack([s.trajectory().accepted for _ in range(60)]).double().mean()
    assert 0.6 < float(acc) < 0.9  # at or slightly above target (ε is rounded down to τ/n)
    assert s.step_size == therm.step_size


def test_set_couplings_changes_the_distribution():
    s = HMCSampler(dim=1, L=8, chains=64, generator=torch.Generator().manual_seed(3),
                   kappa=0.4, lam=0.3, start="random")
    s.set_couplings(0.0, 0.0)  # ultra-local Gaussian, ⟨φ²⟩ = 1/2
    s.thermalise(100)
    phi2 = []
    for _ in range(100):
        s.trajectory()
        phi2.append(s.phi.pow(2).mean())
    assert abs(float(torch.stack(phi2).mean()) - 0.5) < 0.02


def test_divergent_trajectory_is_rejected():
    s = HMCSampler(dim=2, L=4, chains=8, generator=torch.Generator().manual_seed(0),
                   kappa=0.2, lam=1.0, step_size=5.0, trajectory_length=50.0,
                   integrator="leapfrog")
    before = s.phi.clone()
    stats = s.trajectory()
    assert not stats.accepted.any() and torch.equal(before, s.phi)


@pytest.mark.slow
@pytest.mark.parametrize("integrator", ["leapfrog", "omelyan"])
def test_exp_minus_dH_is_one(integrator: str):
    res = _run(dim=2, L=8, kappa=0.25, lam=0.5, n_samples=64 * 400, chains=64, n_therm=200,
               thin=1, integrator=integrator, target_acceptance=0.6)
    assert res.dH_rms > 0.3  # large enough to test: ⟨e^{−ΔH}⟩ = 1 is not trivially true
    assert res.dH_mean > 0  # Jensen: ⟨ΔH⟩ ≥ 0
    assert res.exp_mdH_error < 0.01
    assert abs(res.exp_mdH_mean - 1.0) < 3 * res.exp_mdH_error, res

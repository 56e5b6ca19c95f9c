"""Exact sampling with a trained flow (DESIGN §6; paper eqs. 10, 12, 38).

1. Coarse configurations φ from HMC at the model's (learned) coarse couplings: ``chains``
   independent chains, thermalised (step size tuned), τ_int of |M| and S/V measured on a
   pilot stretch of the same run, and kept every ⌈4·τ_int⌉ trajectories (core.physics.mcmc.hmc;
   COARSE_THIN_TAUS). ``coarse_sampler="cluster"`` draws them with the cluster algorithm
   instead (Wolff flips + Metropolis sweeps, core.physics.mcmc.cluster; thin = ⌈4·τ_int⌉ sweeps
   likewise) — any exact sampler of e^{−S_L} will do, eq. (10) corrects the rest. The
   baseline draws from its Gaussian prior instead (no coarse lattice: coarse_sampler must
   be "hmc").
2. Each φ is pushed through T_θ: log q(φ̃) = −S_L(φ) + log_q_rel (up to −log Z_L).
3. Independence Metropolis (eq. 10) on log w = −S(φ̃) − log q(φ̃) in float64, S at the
   model's fine couplings (learned ones for UV-matching).
4. Observables on the Markov chain (Γ-method, τ_int), importance-reweighted observables of
   the proposals as a cross-check, ESS/N of the proposals (eq. 12), and the ODE-consistency
   figure: max |Δ log q| between the model's solver and one with twice the steps.
5. The proposals' log w̃ and ∂S/∂c (:class:`ProposalWeights`) for log Z = log Z_c + log ⟨w̃⟩
   (DESIGN §10; core.physics.stats.free_energy).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.physics.control import ProgressHook, SamplingCancelled, StopHook
from core.physics.exact.coarse_samplers import CoarseSampler, check_coarse_sampler
from core.physics.exact.metropolis import independence_metropolis
from core.physics.exact.solver_shift import SolverShift, solver_shift
from core.physics.flows.gap import measure_baseline_gap, measure_gap
from core.physics.flows.push_batch import push_batch
from core.physics.io.flow_files import load_flow
from core.physics.lattice.action import action, coupling_derivatives
from core.physics.lattice.couplings import Couplings
from core.physics.lattice.observables import Estimate, summarize
from core.physics.mcmc.cluster import ClusterParams, run_cluster
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.stats.gamma import ess_fraction


@dataclass
class SampleResult:
    """A Metropolis-corrected fine ensemble.

    ``configs`` (N, L, …, L): the Markov chain (a rejected step repeats the previous state);
    ``accepted`` (N,) bool; ``log_q``, ``action`` (N,) float64 of the chain states (log q up
    to the constant −log Z_L); ``acceptance``; ``ess``: ESS/N of the N proposals;
    ``observables``: on the chain with Γ-method errors and τ_int; ``reweighted``: importance
    reweighted proposals (i.i.d. errors); ``ode_consistency``: max |Δ log q| vs 2× solver
    steps on a subset; ``thin`` and ``coarse_tau_int`` (pilot, in trajectories or sweeps)
    of the coarse sampler, ``coarse_sampler`` ("hmc" or "cluster"; "none" for the baseline).
    """

    configs: Tensor
    accepted: Tensor
    log_q: Tensor
    action: Tensor
    acceptance: float
    ess: float
    observables: dict[str, Estimate]
    reweighted: dict[str, Estimate]
    ode_consistency: float
    seconds: float
    coarse: Couplings | None
    fine: Couplings
    thin: int
    coarse_tau_int: float | None
    n_proposals: int
    coarse_sampler: str = "hmc"
    proposal_weights: ProposalWeights | None = None
    solver_shift: SolverShift | None = None


@dataclass(frozen=True)
class ProposalWeights:
    """Per fresh proposal, in proposal order (float64): log w̃ = −S − log q̃ (log q̃ without
    −log Z_c: the free energy's weight, core.physics.stats.free_energy) and ∂S/∂κ, ∂S/∂λ
    (eq. 35), which reweight w̃ to nearby couplings: log w̃' = log w̃ − Δκ ∂S/∂κ − Δλ ∂S/∂λ."""

    log_w: Tensor
    dS_dkappa: Tensor
    dS_dlam: Tensor


@dataclass(frozen=True)
class Proposals:
    """Fine proposals with float64 log q (up to −log Z_L) and log w at the fine couplings."""

    phi: Tensor
    log_q: Tensor
    action: Tensor
    log_w: Tensor


def push(flow: Any, phi_coarse: Tensor, coarse: Couplings, fine: Couplings,
         generator: torch.Generator, *, chunk: int | None = None,
         should_stop: StopHook | None = None) -> Proposals:
    """T_θ over ``phi_coarse`` in chunks (no gradients), float64 log-densities; ``chunk``
    defaults to :func:`push_batch` of the fine volume."""
    chunk = chunk or push_batch(flow.fine_L ** flow.dim)
    dtype = next(flow.parameters()).dtype
    device = next(flow.parameters()).device
    phis, log_qs = [], []
    with torch.no_grad():
        for start in range(0, phi_coarse.shape[0], chunk):
            if should_stop is not None and should_stop():
                raise SamplingCancelled(f"stopped after {start} proposals")
            x = phi_coarse[start:start + chunk].to(device=device, dtype=dtype)
            out = flow(x, generator)
            s_l = action(x.to(torch.float64), coarse.kappa, coarse.lam)
            phis.append(out.phi.detach().cpu())
            log_qs.append((-s_l + out.log_q_rel.to(torch.float64)).cpu())
    phi = torch.cat(phis)
    log_q = torch.cat(log_qs)
    s = action(phi.to(torch.float64), fine.kappa, fine.lam)
    return Proposals(phi=phi, log_q=log_q, action=s, log_w=-s - log_q)


def draw_baseline(flow: Any, n: int, fine: Couplings, generator: torch.Generator, *,
                  chunk: int | None = None,
                  should_stop: StopHook | None = None) -> Proposals:
    """Proposals of a baseline flow (its own Gaussian prior), in chunks like :func:`push`."""
    chunk = chunk or push_batch(flow.L ** flow.dim)
    phis, log_qs = [], []
    with torch.no_grad():
        for start in range(0, n, chunk):
            if should_stop is not None and should_stop():
                raise SamplingCancelled(f"stopped after {start} proposals")
            out = flow(min(chunk, n - start), generator)
            phis.append(out.phi.detach().cpu())
            log_qs.append(out.log_q.to(torch.float64).cpu())
    phi, log_q = torch.cat(phis), torch.cat(log_qs)
    s = action(phi.to(torch.float64), fine.kappa, fine.lam)
    return Proposals(phi=phi, log_q=log_q, action=s, log_w=-s - log_q)


def ode_consistency(flow: Any, phi_coarse: Tensor | None, generator: torch.Generator,
                    n: int = 64) -> float:
    """max |Δ log q| between the model's solver and one with twice the steps (adaptive
    solvers: 100× tighter tolerances)."""
    if phi_coarse is None:
        return measure_baseline_gap(flow, n, generator).log_q
    p = next(flow.parameters())
    x = phi_coarse[:n].to(device=p.device, dtype=p.dtype)
    return measure_gap(flow, x, generator).log_q


def model_couplings(flat: dict[str, float]) -> tuple[Couplings, Couplings]:
    """(coarse, fine) from a flow file's coupling record (keys ``{coarse,fine}_{kappa,lam}``)."""
    return (Couplings(kappa=float(flat["coarse_kappa"]), lam=float(flat["coarse_lam"])),
            Couplings(kappa=float(flat["fine_kappa"]), lam=float(flat["fine_lam"])))


COARSE_THIN_TAUS = 4.0
"""Coarse chains feeding the Metropolis chain are thinned by ⌈4 τ_int⌉, not the direct
samplers' ⌈2 τ_int⌉. Proposals are taken time slice by time slice across the C coarse
chains, so one chain's successive configurations sit C proposals apart in the Metropolis
chain, far beyond the Γ-method's window (W ≈ 4). At 2 τ_int they were still correlated:
ρ_|M|(32) ≈ 0.08 pooled over 160 runs at L = 16, and τ_int summed to lag 64 was 0.93
against the windowed 0.82, i.e. errors ≈ 6 % small. At 4 τ_int, ρ(32) ≈ 0.01-0.02. The
replicated-run ratios cannot resolve 6 %: 1.04-1.09 at 2 τ, 0.99-1.13 at 4 τ over 160-run
sets, all within 1 ± 0.2 (docs/benchmarks.md, "Flow + Metropolis, replicated"). The cost
is within timing noise: 4096 configurations took 8.3 s against 8.5 s at L = 16 and 64-69 s
against 58-66 s at L = 32 (the push dominates, not the 8×8 coarse chains)."""


def draw_coarse(sampler: CoarseSampler, *, dim: int, L: int, coarse: Couplings, n_samples: int,
                chains: int, generator: torch.Generator, device: str,
                progress: ProgressHook | None = None,
                should_stop: StopHook | None = None,
                thin_taus: float) -> tuple[Tensor, int, float | None]:
    """(φ (n_samples, L, …, L), thin, pilot τ_int) from ``chains`` chains of HMC or the
    cluster algorithm at the coarse couplings, time-major: φ[t·C + c] is chain c at its t-th
    kept configuration (so one chain's successive configurations are C proposals apart; the
    HDF5 ensembles of direct samplers are chain-major instead)."""
    n, c = n_samples, min(chains, n_samples)
    kw: dict[str, Any] = dict(dim=dim, L=L, kappa=coarse.kappa, lam=coarse.lam,
                              generator=generator, device=device, progress=progress,
                              should_stop=should_stop)
    run = (run_cluster(params=ClusterParams(n_samples=n, chains=c, thin_taus=thin_taus), **kw)
           if sampler == "cluster"
           else run_hmc(params=HmcParams(n_samples=n, chains=c, thin_taus=thin_taus), **kw))
    phi = run.configs.reshape((-1, *run.configs.shape[2:]))[:n_samples]
    return phi, run.thin, run.tau_int_pilot


def sample(model_dir: str | Path, *, n_samples: int, seed: int, chains: int = 32,
           device: str = "cpu", progress: ProgressHook | None = None,
           should_stop: StopHook | None = None,
           coarse_sampler: CoarseSampler = "hmc",
           coarse_thin_taus: float = COARSE_THIN_TAUS,
           check_solver: bool = False) -> SampleResult:
    """Metropolis-corrected fine ensemble of ``n_samples`` from the flow in ``model_dir``.

    ``coarse_sampler``: "hmc" or "cluster" for the coarse configurations; ValueError
    naming it for a model that cannot use it (a baseline, an odd coarse_L:
    core.physics.exact.coarse_samplers); ``coarse_thin_taus``: its chains keep every
    ⌈coarse_thin_taus·τ_int⌉ (COARSE_THIN_TAUS); ``check_solver``: also measure how far the
    reference solver moves log ⟨w̃⟩ (core.physics.exact.solver_shift; for log Z)."""
    t0 = time.perf_counter()
    loaded = load_flow(Path(model_dir))
    check_coarse_sampler(coarse_sampler, loaded.config.kind, loaded.config.coarse_L)
    flow, config = loaded.flow.to(device), loaded.config
    flow.eval()
    coarse_c, fine = model_couplings(loaded.couplings)
    coarse = coarse_c if config.kind != "baseline" else None
    g_hmc = torch.Generator(device=device).manual_seed(seed)
    g_flow = torch.Generator(device=device).manual_seed(seed + 1)
    g_mc = torch.Generator().manual_seed(seed + 2)
    thin, tau = 1, None
    phi_coarse = None
    if coarse is None:
        props = draw_baseline(flow, n_samples, fine, g_flow, should_stop=should_stop)
    else:
        assert config.coarse_L is not None
        phi_coarse, thin, tau = draw_coarse(
            coarse_sampler, dim=config.dim, L=config.coarse_L, coarse=coarse,
            n_samples=n_samples, chains=chains, generator=g_hmc, device=device,
            progress=progress, should_stop=should_stop, thin_taus=coarse_thin_taus)
        props = push(flow, phi_coarse, coarse, fine, g_flow, should_stop=should_stop)
    if progress is not None:
        progress(n_samples, n_samples, {"phase": "metropolis"})
    mc = independence_metropolis(props.log_w, g_mc)
    chain = mc.chain(props.phi)
    obs = summarize(chain.to(torch.float64)[:, None], dim=config.dim, kappa=fine.kappa,
                    lam=fine.lam)
    rew = summarize(props.phi.to(torch.float64), dim=config.dim, kappa=fine.kappa,
                    lam=fine.lam, log_weights=props.log_w)
    gap = ode_consistency(flow, phi_coarse, torch.Generator(device=device).manual_seed(seed + 3))
    shift = (solver_shift(flow, phi_coarse, coarse, fine,
                          torch.Generator(device=device).manual_seed(seed + 5))
             if check_solver else None)
    return SampleResult(
        configs=chain, accepted=mc.accepted, log_q=mc.chain(props.log_q),
        action=mc.chain(props.action), acceptance=mc.acceptance,
        ess=ess_fraction(props.log_w) if bool(torch.isfinite(props.log_w).all()) else math.nan,
        observables=obs, reweighted=rew, ode_consistency=gap,
        seconds=time.perf_counter() - t0, coarse=coarse, fine=fine, thin=thin,
        coarse_tau_int=tau, n_proposals=int(props.phi.shape[0]),
        coarse_sampler=coarse_sampler if coarse is not None else "none",
        proposal_weights=weights_of(props), solver_shift=shift)


def weights_of(props: Proposals) -> ProposalWeights:
    """log w̃ and ∂S/∂κ, ∂S/∂λ of every proposal, float64 on the CPU."""
    d = coupling_derivatives(props.phi.to(torch.float64))
    return ProposalWeights(log_w=props.log_w.to(torch.float64).cpu(),
                           dS_dkappa=d.dkappa.cpu(), dS_dlam=d.dlam.cpu())

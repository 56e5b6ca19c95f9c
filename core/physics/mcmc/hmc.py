"""Batched Hybrid Monte Carlo for the lattice φ⁴ action (paper eq. 3; Appendix C).

Many independent chains form one batch ``(C, L, ..., L)`` (any d). One trajectory:
draw π ~ N(0, 1), integrate Hamilton's equations for H(φ, π) = Σ_x π_x²/2 + S(φ) with a
reversible, area-preserving integrator (leapfrog, or Omelyan's second-order minimum-norm
scheme with λ_O ≈ 0.1932), then accept with probability min(1, e^{−ΔH}) (float64).
The step size is tuned towards a target acceptance by dual averaging during
thermalisation only, and frozen afterwards, so the production chain is exact. Chains
start by the rule of core.physics.mcmc.start (ordered in the mean-field broken phase).

:func:`run_hmc` runs one batch of chains on a lattice as :class:`HmcParams` say.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from core.physics.control import ProgressHook, SamplingCancelled, StopHook
from core.physics.lattice.action import action, force, lattice_dims
from core.physics.mcmc.integrators import INTEGRATORS, Coupling, hamiltonian
from core.physics.mcmc.start import Start, initial_field, resolve_start
from core.physics.stats.gamma import GammaResult, gamma_method

Integrator = Literal["leapfrog", "omelyan"]


@dataclass(frozen=True)
class TrajectoryStats:
    """Per-chain outcome of one trajectory: accepted (C,) bool, dH (C,) float64."""

    accepted: Tensor
    dH: Tensor


@dataclass(frozen=True)
class ThermalisationResult:
    step_size: float
    n_leapfrog: int
    acceptance: float
    trajectories: int


class HMCSampler:
    """C independent HMC chains at couplings (κ, λ); ``phi`` is the current batch.

    Reuse with changing couplings: ``set_couplings`` then ``thermalise`` (optionally with
    ``adapt=True`` to retune ε) and ``trajectory()`` as often as needed.
    """

    def __init__(
        self,
        *,
        dim: int,
        L: int,
        chains: int,
        generator: torch.Generator,
        kappa: Coupling,
        lam: Coupling,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float64,
        integrator: Integrator = "omelyan",
        trajectory_length: float = 1.0,
        step_size: float | None = None,
        start: Start = "auto",
    ) -> None:
        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator={integrator!r}: use one of {sorted(INTEGRATORS)}")
        self.dim, self.L, self.chains = dim, L, chains
        self.generator, self.device, self.dtype = generator, torch.device(device), dtype
        self.integrator = integrator
        self.trajectory_length = float(trajectory_length)
        self.kappa, self.lam = kappa, lam
        if step_size is None:
            step_size = self.trajectory_length / (5 if integrator == "omelyan" else 10)
        self.set_step_size(step_size)
        self.start = resolve_start(start, dim, float(kappa), float(lam))
        self.phi = initial_field(self.start, dim=dim, L=L, chains=chains, kappa=float(kappa),
                                 lam=float(lam), generator=generator, device=self.device,
                                 dtype=dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.chains,) + (self.L,) * self.dim

    def set_couplings(self, kappa: Coupling, lam: Coupling) -> None:
        self.kappa, self.lam = kappa, lam

    def set_step_size(self, eps: float) -> None:
        """Fix ε and n = ⌈τ/ε⌉ leapfrog steps; ε is then reduced to τ/n exactly."""
        self.n_leapfrog = max(1, math.ceil(self.trajectory_length / eps - 1e-9))
        self.step_size = self.trajectory_length / self.n_leapfrog

    def _force(self, phi: Tensor) -> Tensor:
        return force(phi, self.kappa, self.lam)

    def trajectory(self, eps: float | None = None, n_steps: int | None = None) -> TrajectoryStats:
        """One HMC update of every chain (Metropolis in float64)."""
        eps = self.step_size if eps is None else eps
        n_steps = self.n_leapfrog if n_steps is None else n_steps
        with torch.no_grad():
            pi = torch.randn(self.shape, generator=self.generator, device=self.device,
                             dtype=self.dtype)
            h0 = hamiltonian(self.phi, pi, self.kappa, self.lam)
            new = INTEGRATORS[self.integrator](self.phi, pi, self._force, eps, n_steps)
            dH = hamiltonian(new.phi, new.pi, self.kappa, self.lam) - h0
            u = torch.rand(self.chains, generator=self.generator, device=self.device,
                           dtype=torch.float64)
            accepted = torch.log(u) < -dH  # NaN/inf ΔH is rejected
            mask = accepted.reshape((-1,) + (1,) * self.dim)
            self.phi = torch.where(mask, new.phi, self.phi)
        return TrajectoryStats(accepted=accepted, dH=dH)

    def thermalise(
        self,
        n_trajectories: int,
        *,
        target_acceptance: float = 0.8,
        adapt: bool = True,
        callback: Callable[[TrajectoryStats], None] | None = None,
    ) -> ThermalisationResult:
        """Run n trajectories; with ``adapt`` tune ε by dual averaging (Hoffman & Gelman
        2014, γ=0.05, t₀=10, κ=0.75) on the chain-averaged min(1, e^{−ΔH}), then freeze
        ε̄ (rounded down to τ/n)."""
        eps0 = self.step_size
        mu, h_bar, log_eps_bar = math.log(10 * eps0), 0.0, math.log(eps0)
        lo, hi = math.log(self.trajectory_length / 2000), math.log(self.trajectory_length)
        log_eps, n_acc = math.log(eps0), 0.0
        for t in range(1, n_trajectories + 1):
            eps = math.exp(log_eps)
            n = max(1, round(self.trajectory_length / eps))
            stats = self.trajectory(eps, n) if adapt else self.trajectory()
            n_acc += float(stats.accepted.double().mean())
            if adapt:
                alpha = float(torch.exp(-stats.dH).clamp(max=1.0).nan_to_num(0.0).mean())
                h_bar += ((target_acceptance - alpha) - h_bar) / (t + 10)
                log_eps = min(max(mu - math.sqrt(t) / 0.05 * h_bar, lo), hi)
                w = t**-0.75
                log_eps_bar = w * log_eps + (1 - w) * log_eps_bar
            if callback is not None:
                callback(stats)
        if adapt and n_trajectories > 0:
            self.set_step_size(math.exp(log_eps_bar))
        return ThermalisationResult(
            step_size=self.step_size,
            n_leapfrog=self.n_leapfrog,
            acceptance=n_acc / max(n_trajectories, 1),
            trajectories=n_trajectories,
        )


@dataclass
class HMCResult:
    """Output of :func:`run_hmc`. ``configs`` is ``(T, C, L, ..., L)`` on the CPU (time-major,
    chains second); ΔH statistics are over all production trajectories."""

    configs: Tensor
    acceptance: float
    step_size: float
    n_leapfrog: int
    dH_mean: float
    dH_rms: float
    exp_mdH_mean: float
    exp_mdH_error: float
    thin: int
    tau_int_pilot: float | None
    start: str
    seconds: float
    integrator: str = "omelyan"
    trajectory_length: float = 1.0


class _Ticker:
    """Counts trajectories, checks ``should_stop`` and reports ``progress`` periodically."""

    def __init__(self, progress: ProgressHook | None,
                 should_stop: StopHook | None, total: int) -> None:
        self.progress, self.should_stop, self.total, self.done = progress, should_stop, total, 0
        self.phase, self.acc, self.n = "thermalise", torch.zeros(()), 0

    def begin(self, phase: str, total: int | None = None) -> None:
        self.phase, self.acc, self.n = phase, torch.zeros(()), 0
        self.total = self.total if total is None else total

    def __call__(self, stats: TrajectoryStats) -> None:
        self.done += 1
        self.n += 1
        self.acc = stats.accepted.double().mean() + self.acc.to(stats.accepted.device)
        if self.progress is not None and (
            self.done % max(1, self.total // 100) == 0 or self.done == self.total
        ):
            info = {"phase": self.phase, "acceptance": float(self.acc) / self.n}
            self.progress(self.done, self.total, info)
        if self.should_stop is not None and self.should_stop():
            raise SamplingCancelled(f"stopped after {self.done} of {self.total} trajectories")


_MIN_PILOT = 200


def _gamma(series: Tensor) -> GammaResult:
    """Γ-method (core.physics.stats.gamma) of a (T, C) series of independent chains (T = 1:
    naive)."""
    x = series.detach().double().cpu()
    if x.shape[0] < 2:
        err = float(x.std() / math.sqrt(x.numel())) if x.numel() > 1 else math.nan
        return GammaResult(float(x.mean()), err, math.nan, 0.5, math.nan, 0, x.numel())
    return gamma_method(x.numpy())


@dataclass(frozen=True)
class HmcParams:
    """How :func:`run_hmc` samples (library defaults; a job's own are core.jobs.specs.HmcSpec's).

    ``n_samples`` configurations kept in all from ``chains`` independent chains (⌈n_samples/
    chains⌉ each); ``n_therm`` thermalisation trajectories per chain, tuning ε towards
    ``target_acceptance``; ``integrator`` and ``trajectory_length`` τ of each trajectory;
    ``thin`` trajectories between kept configurations — None: ⌈thin_taus·τ_int⌉ measured on a
    pilot of max(200, n_therm/2) trajectories; ``start`` (core.physics.mcmc.start);
    ``max_seconds`` caps the wall time (None: no cap); ``dtype`` of the fields."""

    n_samples: int
    chains: int
    n_therm: int = 500
    integrator: Integrator = "omelyan"
    trajectory_length: float = 1.0
    target_acceptance: float = 0.8
    thin: int | None = None
    thin_taus: float = 2.0
    start: Start = "auto"
    max_seconds: float | None = None
    dtype: torch.dtype = torch.float64


def run_hmc(*, dim: int, L: int, kappa: float, lam: float, params: HmcParams,
            generator: torch.Generator, device: str | torch.device = "cpu",
            progress: ProgressHook | None = None,
            should_stop: StopHook | None = None) -> HMCResult:
    """Thermalise (tuning ε), optionally measure τ_int on a pilot stretch of
    max(200, n_therm/2) trajectories (thin = ⌈thin_taus·max τ_int(|M|, S/V)⌉), then keep
    ⌈n_samples/chains⌉ configurations per chain, one every ``thin`` trajectories.

    ``params.max_seconds`` caps the wall time: sampling ends early (after at least two kept
    configurations per chain) once it is spent — used to compare with a flow at equal cost."""
    t0 = time.perf_counter()
    p = params
    if p.n_samples < 1 or p.chains < 1:
        raise ValueError("n_samples and chains must be ≥ 1")
    sampler = HMCSampler(dim=dim, L=L, chains=p.chains, generator=generator, kappa=kappa,
                         lam=lam, device=device, dtype=p.dtype, integrator=p.integrator,
                         trajectory_length=p.trajectory_length, start=p.start)
    per_chain = math.ceil(p.n_samples / p.chains)
    thin = p.thin
    n_pilot = 0 if thin is not None else max(_MIN_PILOT, p.n_therm // 2)
    tick = _Ticker(progress, should_stop, p.n_therm + n_pilot + per_chain * (thin or 1))
    sampler.thermalise(p.n_therm, target_acceptance=p.target_acceptance, callback=tick)
    volume = L**dim
    dims = lattice_dims(sampler.phi)
    tau_pilot: float | None = None
    if thin is None:
        tick.begin("pilot")
        abs_m, dens = [], []
        for _ in range(n_pilot):
            tick(sampler.trajectory())
            abs_m.append(sampler.phi.mean(dim=dims).abs().double())
            dens.append(action(sampler.phi.double(), kappa, lam) / volume)
        tau_pilot = max(_gamma(torch.stack(s)).tau_int for s in (abs_m, dens))
        thin = max(1, math.ceil(p.thin_taus * tau_pilot))
        tick.begin("sample", tick.done + per_chain * thin)
    else:
        tick.begin("sample")
    kept, dHs, accs = [], [], []
    for i in range(per_chain * thin):
        stats = sampler.trajectory()
        tick(stats)
        dHs.append(stats.dH)
        accs.append(stats.accepted)
        if (i + 1) % thin == 0:
            kept.append(sampler.phi.to("cpu", copy=True))
            if (p.max_seconds is not None and len(kept) >= 2
                    and time.perf_counter() - t0 > p.max_seconds):
                break
    dH = torch.stack(dHs)
    exp_mdH = _gamma(torch.exp(-dH))
    return HMCResult(
        configs=torch.stack(kept),
        acceptance=float(torch.stack(accs).double().mean()),
        step_size=sampler.step_size,
        n_leapfrog=sampler.n_leapfrog,
        dH_mean=float(dH.mean()),
        dH_rms=float(dH.pow(2).mean().sqrt()),
        exp_mdH_mean=exp_mdH.mean,
        exp_mdH_error=exp_mdH.error,
        thin=thin,
        tau_int_pilot=tau_pilot,
        start=sampler.start,
        seconds=time.perf_counter() - t0,
        integrator=p.integrator,
        trajectory_length=float(p.trajectory_length),
    )

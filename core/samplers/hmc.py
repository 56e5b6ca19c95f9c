"""Batched Hybrid Monte Carlo for the lattice φ⁴ action (paper eq. 3; Appendix C).

Many independent chains form one batch ``(C, L, ..., L)`` (any d). One trajectory:
draw π ~ N(0, 1), integrate Hamilton's equations for H(φ, π) = Σ_x π_x²/2 + S(φ) with a
reversible, area-preserving integrator (leapfrog, or Omelyan's second-order minimum-norm
scheme with λ_O ≈ 0.1932), then accept with probability min(1, e^{−ΔH}) (float64).
The step size is tuned towards a target acceptance by dual averaging during
thermalisation only, and frozen afterwards, so the production chain is exact.

Start rule (``start="auto"``): a constant field φ has the classical potential per site
(1 − 2λ − 2dκ)φ² + λφ⁴, a double well iff 2dκ > 1 − 2λ. There the chains start
*ordered* (constant field at the classical minimum, random sign per chain) so that no
chain freezes into a domain-wall (stripe) state on large lattices (DESIGN §3); otherwise
from i.i.d. N(0, 1) fields. The mean-field line lies below the true κ_c, so "ordered" is
also chosen in part of the symmetric phase, where it costs only thermalisation time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from core.lattice.action import action, force, lattice_dims
from core.samplers.integrators import INTEGRATORS, Coupling, hamiltonian
from core.stats import GammaResult, gamma_method

Integrator = Literal["leapfrog", "omelyan"]
Start = Literal["random", "ordered", "auto"]


class SamplingCancelled(RuntimeError):
    """Raised between trajectories when ``should_stop()`` returns True."""


def is_broken_mean_field(dim: int, kappa: float, lam: float) -> bool:
    """True iff the constant-field potential (1 − 2λ − 2dκ)φ² + λφ⁴ is a double well."""
    return 2 * dim * kappa > 1 - 2 * lam


def resolve_start(start: Start, dim: int, kappa: float, lam: float) -> Literal["random", "ordered"]:
    if start == "auto":
        return "ordered" if is_broken_mean_field(dim, kappa, lam) else "random"
    if start not in ("random", "ordered"):
        raise ValueError(f"start={start!r}: use 'random', 'ordered' or 'auto'")
    return start


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
        self.phi = self._initial_field()

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.chains,) + (self.L,) * self.dim

    def _initial_field(self) -> Tensor:
        kw: dict[str, Any] = dict(generator=self.generator, device=self.device, dtype=self.dtype)
        if self.start == "random":
            return torch.randn(self.shape, **kw)
        kappa, lam = float(self.kappa), float(self.lam)
        v2 = (2 * self.dim * kappa + 2 * lam - 1) / (2 * lam) if lam > 0 else 0.0
        v = math.sqrt(v2) if v2 > 0 else 1.0
        sign = torch.randint(0, 2, (self.chains,), **kw).mul_(2).sub_(1)
        return (v * sign).reshape((-1,) + (1,) * self.dim).expand(self.shape).clone()

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

    def __init__(self, progress: Callable[[int, int, dict[str, Any]], None] | None,
                 should_stop: Callable[[], bool] | None, total: int) -> None:
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
    """Γ-method (core.stats) of a (T, C) series of independent chains (T = 1: naive)."""
    x = series.detach().double().cpu()
    if x.shape[0] < 2:
        err = float(x.std() / math.sqrt(x.numel())) if x.numel() > 1 else math.nan
        return GammaResult(float(x.mean()), err, math.nan, 0.5, math.nan, 0, x.numel())
    return gamma_method(x.numpy())


def run_hmc(
    *,
    dim: int,
    L: int,
    kappa: float,
    lam: float,
    n_samples: int,
    chains: int,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    integrator: Integrator = "omelyan",
    trajectory_length: float = 1.0,
    n_therm: int = 500,
    target_acceptance: float = 0.8,
    thin: int | None = None,
    thin_taus: float = 2.0,
    start: Start = "auto",
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
) -> HMCResult:
    """Thermalise (tuning ε), optionally measure τ_int on a pilot stretch of
    max(200, n_therm/2) trajectories (thin = ⌈thin_taus·max τ_int(|M|, S/V)⌉), then keep
    ⌈n_samples/chains⌉ configurations per chain, one every ``thin`` trajectories.

    ``max_seconds`` caps the wall time: sampling ends early (after at least two kept
    configurations per chain) once it is spent — used to compare with a flow at equal cost."""
    t0 = time.perf_counter()
    if n_samples < 1 or chains < 1:
        raise ValueError("n_samples and chains must be ≥ 1")
    sampler = HMCSampler(dim=dim, L=L, chains=chains, generator=generator, kappa=kappa, lam=lam,
                         device=device, dtype=dtype, integrator=integrator,
                         trajectory_length=trajectory_length, start=start)
    per_chain = math.ceil(n_samples / chains)
    n_pilot = 0 if thin is not None else max(_MIN_PILOT, n_therm // 2)
    tick = _Ticker(progress, should_stop, n_therm + n_pilot + per_chain * (thin or 1))
    sampler.thermalise(n_therm, target_acceptance=target_acceptance, callback=tick)
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
        thin = max(1, math.ceil(thin_taus * tau_pilot))
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
            if (max_seconds is not None and len(kept) >= 2
                    and time.perf_counter() - t0 > max_seconds):
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
        integrator=integrator,
        trajectory_length=float(trajectory_length),
    )

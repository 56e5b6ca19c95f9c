"""Cluster algorithm for lattice φ⁴: Wolff flips of the embedded Ising signs plus local
Metropolis sweeps for the magnitudes (R. C. Brower & P. Tamayo, PRL 62 (1989) 1087;
U. Wolff, PRL 62 (1989) 361).

With φ_x = ε_x |φ_x| the action of eq. (3) reads S = Σ_x V(|φ_x|) − Σ_{x,μ} J_{x,x+μ} ε_x ε_{x+μ},
V(φ) = (1 − 2λ)φ² + λφ⁴,  J_xy = 2κ|φ_x||φ_y|,
so at fixed magnitudes the signs form an Ising model with link couplings J_xy (one per
link (x, μ): on L = 2 the two links joining the same pair are two bonds, as in eq. 3).
Fortuin–Kasteleyn: a link is a bond with probability

    p_xy = 1 − exp(−2 max(0, J_xy ε_x ε_y)) = 1 − exp(−4 max(0, κ φ_x φ_y)),

and flipping the signs of the bond cluster of one random seed site (Wolff) satisfies
detailed balance with respect to e^{−S}: the interior bond probabilities are the same
before and after the flip, and the boundary factors Π(1 − p) give exactly e^{−ΔS}. The
form above holds for either sign of κ (κ < 0 bonds anti-aligned neighbours).

The magnitudes (and signs) are moved by checkerboard Metropolis: φ_x → φ_x + δ(2u − 1)
on each parity sublattice in turn, accepted with min(1, e^{−ΔS_x}) where
ΔS_x = V(φ'_x) − V(φ_x) − 2κ(φ'_x − φ_x) Σ_μ (φ_{x+μ} + φ_{x−μ}). Sites of one parity do not
interact (even L), so the sublattice update is a product of exact single-site steps;
with the cluster flips the chain is ergodic and leaves e^{−S} invariant. δ is tuned
towards 50 % acceptance during thermalisation only and frozen afterwards.

One *sweep* = one Metropolis sweep (both sublattices) + ``clusters_per_sweep`` Wolff flips.
Chains start by the rule of core.physics.mcmc.start; :func:`run_cluster` runs one batch of
chains as :class:`ClusterParams` say.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from core.physics.control import ProgressHook, SamplingCancelled, StopHook
from core.physics.lattice.action import action, lattice_dims, neighbour_sum
from core.physics.mcmc.start import Start, initial_field, resolve_start
from core.physics.stats.gamma import gamma_method


def bond_probabilities(phi: Tensor, kappa: float) -> list[Tensor]:
    """p_{x,x+μ} = 1 − exp(−4 max(0, κ φ_x φ_{x+μ})) for each lattice axis μ."""
    return [
        -torch.expm1(-(4.0 * kappa * phi * torch.roll(phi, -1, dims=mu)).clamp(min=0.0))
        for mu in lattice_dims(phi)
    ]


def grow_clusters(bonds: list[Tensor], seeds: Tensor) -> Tensor:
    """Boolean mask ``(B, L, ..., L)`` of the bond cluster containing ``seeds`` (flat site
    indices, one per configuration); ``bonds[k]`` joins x and x + e_μ along axis μ = k + 1."""
    shape = bonds[0].shape
    mask = torch.zeros(shape[0], math.prod(shape[1:]), dtype=torch.bool, device=seeds.device)
    mask[torch.arange(shape[0], device=seeds.device), seeds] = True
    mask = mask.reshape(shape)
    while True:
        old = mask
        for _ in range(4):  # a few growth steps per (synchronising) convergence check
            for mu, b in enumerate(bonds, start=1):
                mask = (mask | torch.roll(mask & b, 1, dims=mu)
                        | (torch.roll(mask, -1, dims=mu) & b))
        if torch.equal(mask, old):
            return mask


def wolff_flip(phi: Tensor, kappa: float, generator: torch.Generator) -> Tensor:
    """One Wolff flip in every configuration of ``phi`` (in place); returns cluster sizes."""
    probs = bond_probabilities(phi, kappa)
    bonds = [torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p
             for p in probs]
    volume = math.prod(phi.shape[1:])
    seeds = torch.randint(0, volume, (phi.shape[0],), generator=generator, device=phi.device)
    mask = grow_clusters(bonds, seeds)
    phi.copy_(torch.where(mask, -phi, phi))
    return mask.reshape(phi.shape[0], -1).sum(dim=1)


def parity_masks(phi: Tensor) -> list[Tensor]:
    """Even and odd sublattices (Σ_μ x_μ mod 2) broadcastable against ``phi``; needs even L."""
    coords = torch.meshgrid(*[torch.arange(n, device=phi.device) for n in phi.shape[1:]],
                            indexing="ij")
    parity = sum(coords, torch.zeros((), dtype=torch.long, device=phi.device)) % 2
    return [(parity == k)[None] for k in (0, 1)]


@dataclass(frozen=True)
class SweepStats:
    """Outcome of one sweep: Metropolis acceptance, mean cluster size / V per flip."""

    acceptance: float
    cluster_fraction: float


class ClusterSampler:
    """C independent chains ``(C, L, ..., L)`` updated by Metropolis sweeps + Wolff flips."""

    def __init__(self, *, dim: int, L: int, chains: int, generator: torch.Generator,
                 kappa: float, lam: float, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float64, clusters_per_sweep: int = 1,
                 step_size: float = 1.0, start: Start = "auto") -> None:
        if L % 2:
            raise ValueError(f"L={L}: the checkerboard Metropolis sweep needs an even L")
        if clusters_per_sweep < 0:
            raise ValueError("clusters_per_sweep must be ≥ 0")
        self.dim, self.L, self.chains = dim, L, chains
        self.kappa, self.lam = float(kappa), float(lam)
        self.generator, self.device, self.dtype = generator, torch.device(device), dtype
        self.clusters_per_sweep, self.step_size = clusters_per_sweep, float(step_size)
        self.start = resolve_start(start, dim, self.kappa, self.lam)
        self.phi = initial_field(self.start, dim=dim, L=L, chains=chains, kappa=self.kappa,
                                 lam=self.lam, generator=generator, device=self.device,
                                 dtype=dtype)
        self._parity = parity_masks(self.phi)

    def _local(self, x: Tensor) -> Tensor:
        x2 = x * x
        return (1 - 2 * self.lam) * x2 + self.lam * x2 * x2

    def metropolis_sweep(self) -> float:
        """Checkerboard Metropolis over both sublattices; returns the acceptance rate."""
        accepted = 0.0
        kw: dict[str, Any] = dict(generator=self.generator, device=self.device, dtype=self.dtype)
        for mask in self._parity:
            phi = self.phi
            new = phi + self.step_size * (2 * torch.rand(phi.shape, **kw) - 1)
            d_s = (self._local(new) - self._local(phi)
                   - 2 * self.kappa * (new - phi) * neighbour_sum(phi))
            u = torch.rand(phi.shape, generator=self.generator, device=self.device,
                           dtype=torch.float64)
            acc = mask & (torch.log(u) < -d_s.double())
            self.phi = torch.where(acc, new, phi)
            accepted += float(acc.sum()) / (mask.sum().item() * self.chains)
        return accepted / 2

    def sweep(self) -> SweepStats:
        acc = self.metropolis_sweep()
        sizes = torch.zeros(self.chains, device=self.device, dtype=torch.long)
        for _ in range(self.clusters_per_sweep):
            sizes = sizes + wolff_flip(self.phi, self.kappa, self.generator)
        n = max(self.clusters_per_sweep, 1)
        return SweepStats(acceptance=acc,
                          cluster_fraction=float(sizes.double().mean()) / (n * self.L**self.dim))

    def thermalise(self, n_sweeps: int, callback: Callable[[SweepStats], None] | None = None,
                   target: float = 0.5) -> None:
        """n sweeps, tuning δ by Robbins–Monro on log δ towards ``target`` acceptance."""
        for t in range(n_sweeps):
            stats = self.sweep()
            self.step_size *= math.exp((stats.acceptance - target) / math.sqrt(t + 1.0))
            self.step_size = min(max(self.step_size, 1e-3), 10.0)
            if callback is not None:
                callback(stats)


@dataclass
class ClusterResult:
    """Output of :func:`run_cluster`: ``configs`` is ``(T, C, L, ..., L)`` on the CPU."""

    configs: Tensor
    acceptance: float
    step_size: float
    cluster_fraction: float
    clusters_per_sweep: int
    thin: int
    tau_int_pilot: float | None
    start: str
    seconds: float


@dataclass(frozen=True)
class ClusterParams:
    """How :func:`run_cluster` samples (library defaults; a job's own are
    core.jobs.specs.HmcSpec's).

    ``n_samples`` configurations kept in all from ``chains`` independent chains (⌈n_samples/
    chains⌉ each); ``n_therm`` thermalisation sweeps per chain, tuning δ; ``thin`` sweeps
    between kept configurations — None: ⌈thin_taus·τ_int⌉ measured on a pilot of
    max(200, n_therm/2) sweeps; ``clusters_per_sweep`` Wolff flips per Metropolis sweep;
    ``start`` (core.physics.mcmc.start); ``max_seconds`` caps the wall time (None: no cap);
    ``dtype`` of the fields."""

    n_samples: int
    chains: int
    n_therm: int = 500
    thin: int | None = None
    thin_taus: float = 2.0
    clusters_per_sweep: int = 1
    start: Start = "auto"
    max_seconds: float | None = None
    dtype: torch.dtype = torch.float64


def run_cluster(*, dim: int, L: int, kappa: float, lam: float, params: ClusterParams,
                generator: torch.Generator, device: str | torch.device = "cpu",
                progress: ProgressHook | None = None,
                should_stop: StopHook | None = None) -> ClusterResult:
    """Thermalise (tuning δ), then, unless ``thin`` is given, measure τ_int of |M|, M² and
    S/V on a pilot of max(200, n_therm/2) sweeps (thin = ⌈thin_taus·max τ_int⌉) and keep
    ⌈n_samples/chains⌉ configurations per chain, one every ``thin`` sweeps."""
    t0 = time.perf_counter()
    p = params
    if p.n_samples < 1 or p.chains < 1:
        raise ValueError("n_samples and chains must be ≥ 1")
    s = ClusterSampler(dim=dim, L=L, chains=p.chains, generator=generator, kappa=kappa, lam=lam,
                       device=device, dtype=p.dtype, clusters_per_sweep=p.clusters_per_sweep,
                       start=p.start)
    per_chain = math.ceil(p.n_samples / p.chains)
    thin = p.thin
    n_pilot = 0 if thin is not None else max(200, p.n_therm // 2)
    total = [p.n_therm + n_pilot + per_chain * (thin or 1)]
    done = [0]

    def tick(stats: SweepStats, phase: str) -> None:
        done[0] += 1
        if progress is not None and (done[0] % max(1, total[0] // 100) == 0
                                     or done[0] == total[0]):
            progress(done[0], total[0], {"phase": phase, "acceptance": stats.acceptance})
        if should_stop is not None and should_stop():
            raise SamplingCancelled(f"stopped after {done[0]} of {total[0]} sweeps")

    s.thermalise(p.n_therm, callback=lambda st: tick(st, "thermalise"))
    dims, volume = lattice_dims(s.phi), L**dim
    tau_pilot: float | None = None
    if thin is None:
        series: list[list[Tensor]] = [[], [], []]
        for _ in range(n_pilot):
            tick(s.sweep(), "pilot")
            m = s.phi.mean(dim=dims).double()
            series[0].append(m.abs())
            series[1].append(m * m)
            series[2].append(action(s.phi.double(), kappa, lam) / volume)
        tau_pilot = max(gamma_method(torch.stack(x).cpu().numpy()).tau_int for x in series)
        thin = max(1, math.ceil(p.thin_taus * tau_pilot))
        total[0] = done[0] + per_chain * thin
    kept: list[Tensor] = []
    acc, frac, n_sweeps = 0.0, 0.0, 0
    for i in range(per_chain * thin):
        stats = s.sweep()
        tick(stats, "sample")
        acc, frac, n_sweeps = acc + stats.acceptance, frac + stats.cluster_fraction, n_sweeps + 1
        if (i + 1) % thin == 0:
            kept.append(s.phi.to("cpu", copy=True))
            if (p.max_seconds is not None and len(kept) >= 2
                    and time.perf_counter() - t0 > p.max_seconds):
                break
    return ClusterResult(configs=torch.stack(kept), acceptance=acc / n_sweeps,
                         step_size=s.step_size, cluster_fraction=frac / n_sweeps,
                         clusters_per_sweep=p.clusters_per_sweep, thin=thin,
                         tau_int_pilot=tau_pilot, start=s.start,
                         seconds=time.perf_counter() - t0)

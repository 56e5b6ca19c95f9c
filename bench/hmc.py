"""Benchmark: site-updates per second of core.physics.mcmc HMC against a plain NumPy leapfrog HMC.

site-updates/s = trajectories × leapfrog steps × V × chains / seconds, both with the leapfrog
integrator, the same step size and number of steps, full Metropolis accept/reject, run side
by side in this process (d = 2). Usage:

    .venv/bin/python bench/hmc.py [--device cpu|cuda] [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from core.physics.mcmc import HMCSampler

KAPPA, LAM, EPS, N_STEPS = 0.25, 0.02, 0.1, 10


def _np_action(phi: np.ndarray) -> np.ndarray:
    hop = sum(phi * np.roll(phi, -1, axis=mu) for mu in (1, 2))
    local = (1 - 2 * LAM) * phi**2 + LAM * phi**4 - 2 * KAPPA * hop
    return local.sum(axis=(1, 2))


def _np_force(phi: np.ndarray) -> np.ndarray:
    nb = sum(np.roll(phi, 1, axis=mu) + np.roll(phi, -1, axis=mu) for mu in (1, 2))
    return 2 * (1 - 2 * LAM) * phi + 4 * LAM * phi**3 - 2 * KAPPA * nb


def numpy_trajectory(phi: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reference: one leapfrog HMC trajectory of every chain in plain NumPy."""
    pi = rng.standard_normal(phi.shape)
    h0 = 0.5 * (pi**2).sum(axis=(1, 2)) + _np_action(phi)
    x, p = phi.copy(), pi - 0.5 * EPS * _np_force(phi)
    for k in range(N_STEPS):
        x = x + EPS * p
        p = p - (EPS if k < N_STEPS - 1 else 0.5 * EPS) * _np_force(x)
    dH = 0.5 * (p**2).sum(axis=(1, 2)) + _np_action(x) - h0
    accept = np.log(rng.random(phi.shape[0])) < -dH
    return np.where(accept[:, None, None], x, phi)


@dataclass(frozen=True)
class Row:
    L: int
    chains: int
    ours: float
    numpy: float


def _rate(run_one, sites: int, min_seconds: float, sync) -> float:
    run_one()  # warm-up
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        run_one()
        n += 1
        sync()
        dt = time.perf_counter() - t0
        if dt > min_seconds and n >= 3:
            return n * N_STEPS * sites / dt


def bench(L: int, chains: int, device: str, min_seconds: float) -> Row:
    sampler = HMCSampler(dim=2, L=L, chains=chains, generator=torch.Generator(device=device),
                         kappa=KAPPA, lam=LAM, device=device, integrator="leapfrog",
                         step_size=EPS, trajectory_length=EPS * N_STEPS, start="random")

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ours = _rate(sampler.trajectory, L * L * chains, min_seconds, sync)
    rng = np.random.default_rng(0)
    state = {"phi": rng.standard_normal((chains, L, L))}

    def numpy_step() -> None:
        state["phi"] = numpy_trajectory(state["phi"], rng)

    ref = _rate(numpy_step, L * L * chains, min_seconds, lambda: None)
    return Row(L, chains, ours, ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="L ∈ {8, 16}, chains ∈ {1, 16}")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes, batches = ([8, 16], [1, 16]) if args.quick else ([8, 16, 32, 64], [1, 16, 64])
    min_seconds = 0.2 if args.quick else 0.5
    print(f"d=2 κ={KAPPA} λ={LAM} leapfrog ε={EPS} n={N_STEPS}; device={args.device}, "
          f"torch threads={torch.get_num_threads()}; site-updates/s")
    print(f"{'L':>4} {'chains':>6} {'srflow HMC':>12} {'NumPy ref':>12} {'ratio':>7}")
    for L in sizes:
        for chains in batches:
            r = bench(L, chains, args.device, min_seconds)
            print(f"{r.L:>4} {r.chains:>6} {r.ours:>12.3e} {r.numpy:>12.3e} "
                  f"{r.ours / r.numpy:>7.2f}", flush=True)


if __name__ == "__main__":
    main()

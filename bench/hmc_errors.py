"""Are HMC's Γ-method error bars honest? Repeat a run with different seeds and compare.

    python bench/hmc_errors.py [--L 8] [--kappa 0.25] [--lam 0.01] [--n 8000] [--runs 8]

For ⟨|M|⟩, χ and S/V: the standard deviation of the run means against the mean quoted
error, and the z of each run against a long reference run (N = 25 × n, random start).
A ratio well above 1 means the quoted errors are too small (a slow mode the pilot τ_int
misses, or too short a thermalisation). With R runs the ratio itself is uncertain by
≈ 1/√(2(R−1)) relative.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from core.lattice.observables import summarize
from core.samplers.hmc import run_hmc

NAMES = ("abs_magnetization", "susceptibility", "action_density")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--kappa", type=float, default=0.25)
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--n", type=int, default=8000, help="configurations per run")
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--chains", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(1)

    def one(seed: int, n: int, start: str = "auto") -> dict[str, tuple[float, float]]:
        res = run_hmc(dim=args.dim, L=args.L, kappa=args.kappa, lam=args.lam, n_samples=n,
                      chains=args.chains, generator=torch.Generator().manual_seed(seed),
                      start=start)  # type: ignore[arg-type]
        est = summarize(res.configs, dim=args.dim, kappa=args.kappa, lam=args.lam)
        return {k: (est[k].mean, est[k].error) for k in NAMES}

    ref = one(10_000, 25 * args.n, start="random")
    runs = [one(100 + i, args.n) for i in range(args.runs)]
    print(f"d={args.dim} L={args.L} κ={args.kappa} λ={args.lam}: {args.runs} runs × {args.n}, "
          f"reference {25 * args.n} (random start)")
    print(f"  {'observable':18s} {'reference':>20s} {'std(means)':>11s} {'<error>':>9s} "
          f"{'ratio':>6s}  z of each run vs reference")
    for k in NAMES:
        means = np.array([r[k][0] for r in runs])
        errs = np.array([r[k][1] for r in runs])
        z = (means - ref[k][0]) / np.hypot(errs, ref[k][1])
        ratio = means.std(ddof=1) / errs.mean()
        print(f"  {k:18s} {ref[k][0]:>10.5g} ± {ref[k][1]:<7.2g} {means.std(ddof=1):>11.3g} "
              f"{errs.mean():>9.3g} {ratio:>6.2f}  {' '.join(f'{v:+.1f}' for v in z)}")
    print(f"  (ratio uncertain by ≈ ±{1 / math.sqrt(2 * (args.runs - 1)):.0%} with "
          f"{args.runs} runs)")


if __name__ == "__main__":
    main()

"""Where does κ_L − κ change sign? The finite-size RG fixed point, from Binder cumulants.

IR-matching fits a coarse theory on an L/2 lattice to the fine theory on L. Its fixed point
κ_L = κ is where the two lattices look alike in a dimensionless, scale-free observable:
phenomenological renormalisation (Nightingale 1976; Binder 1981) puts it at the crossing
of the Binder cumulants U_{L/2}(κ) = U_L(κ), U = 1 − ⟨M⁴⟩/(3⟨M²⟩²). Symmetric side of that
crossing: U_L < U_{L/2} and κ_L < κ; broken side: the reverse (the paper's fig. 4b, at
finite L). This bench measures U and the connected susceptibility V(⟨M²⟩ − ⟨|M|⟩²) by
direct sampling (the cluster algorithm, exact; core.jobs.run.run_job with an HmcSpec) on a
κ grid and prints the crossing by linear interpolation of U_L − U_{L/2}, with its error
from the bracketing points' errors.

    .venv/bin/python bench/binder_crossing.py                    # L = 4 vs 8, λ = 0.01
    .venv/bin/python bench/binder_crossing.py --sizes 8 16 --kappa 0.26 0.27 0.28
    .venv/bin/python bench/binder_crossing.py --flows --kernels 2 5 --kappa 0.26 0.27 0.28

``--flows`` instead trains IR flows L/2 → L (default settings, ``--train-steps`` steps,
``--kernels`` sizes) at each κ and prints the learned κ_L − κ as the mean over the last
third of the steps ± the scatter of its four consecutive quarters — does the kernel size move the
sign change?
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch

from core.jobs.run import run_job
from core.jobs.specs import HmcSpec


def measure(L: int, kappa: float, lam: float, n: int, seed: int) -> dict[str, tuple[float, float]]:
    """(mean, error) of the Binder cumulant, χ_conn and ⟨|M|⟩ at (L, κ, λ)."""
    spec = HmcSpec(
        dim=2, L=L, kappa=kappa, lam=lam, n_samples=n, chains=16, seed=seed, algorithm="cluster"
    )
    with tempfile.TemporaryDirectory(prefix="binder-") as tmp:
        obs = run_job(spec, workdir=Path(tmp)).summary["observables"]
    return {
        k: (float(obs[k]["mean"]), float(obs[k]["error"]))
        for k in ("binder", "susceptibility_connected", "abs_magnetization")
    }


def crossing(
    kappas: list[float], small: list[tuple[float, float]], large: list[tuple[float, float]]
) -> tuple[float, float] | None:
    """κ where U_large − U_small changes sign (linear interpolation) and its error."""
    diff = [(b[0] - a[0], math.hypot(a[1], b[1])) for a, b in zip(small, large, strict=True)]
    for i in range(len(kappas) - 1):
        (d0, e0), (d1, e1) = diff[i], diff[i + 1]
        if d0 < 0 <= d1 or d0 > 0 >= d1:
            k0, k1 = kappas[i], kappas[i + 1]
            x = k0 + (k1 - k0) * d0 / (d0 - d1)
            # first-order error propagation of x through d0 and d1
            dx_d0 = (k1 - k0) * (-d1) / (d0 - d1) ** 2
            dx_d1 = (k1 - k0) * d0 / (d0 - d1) ** 2
            return x, math.hypot(dx_d0 * e0, dx_d1 * e1)
    return None


def kappa_shift(
    L: int, kappa: float, lam: float, kernel: int, steps: int, seed: int
) -> tuple[float, float, float]:
    """(κ_L − κ over the last third of training, its error from 4 blocks, fresh ESS/N)."""
    from core.jobs.specs import TrainSpec
    from core.jobs.train_plan import train_plan
    from core.physics.training.api import train

    spec = TrainSpec(
        method="ir", dim=2, L=L, kappa=kappa, lam=lam, steps=steps, kernel_size=kernel, seed=seed
    )
    with tempfile.TemporaryDirectory(prefix="shift-") as tmp:
        res = train(train_plan(spec), workdir=Path(tmp))
        curve = json.loads((res.model_dir / "metrics.json").read_text())["curve"]
    tail = [r["coarse_kappa"] - kappa for r in curve[-(len(curve) // 3) :]]
    n = len(tail)
    blocks = [sum(b) / len(b) for b in (tail[i * n // 4 : (i + 1) * n // 4] for i in range(4)) if b]
    mean = sum(tail) / len(tail)
    spread = math.sqrt(sum((b - mean) ** 2 for b in blocks) / (len(blocks) - 1) / len(blocks))
    return mean, spread, res.ess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[4, 8], metavar=("L_SMALL", "L"))
    ap.add_argument(
        "--kappa", type=float, nargs="+", default=[0.25, 0.26, 0.265, 0.27, 0.275, 0.28, 0.29, 0.3]
    )
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--n-samples", type=int, default=16000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flows", action="store_true", help="learned κ_L − κ instead of U")
    ap.add_argument("--kernels", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--train-steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.flows:
        L = args.sizes[1]
        print(
            f"IR flows {L // 2} → {L}, λ = {args.lam}, {args.train_steps} steps: "
            "κ_L − κ (mean of the last third ± 4-block error), fresh ESS/N"
        )
        for k in args.kappa:
            cells = []
            for kernel in args.kernels:
                m, e, ess = kappa_shift(L, k, args.lam, kernel, args.train_steps, args.seed)
                cells.append(f"k={kernel}: {m:+.4f} ± {e:.4f} (ESS/N {ess:.2f})")
            print(f"κ = {k:.4f}  " + "   ".join(cells), flush=True)
        print(f"({time.perf_counter() - start:.0f} s)")
        return
    res: dict[int, list[dict[str, tuple[float, float]]]] = {}
    for L in args.sizes:
        res[L] = [
            measure(L, k, args.lam, args.n_samples, args.seed + i) for i, k in enumerate(args.kappa)
        ]
    small, large = args.sizes
    print(
        f"λ = {args.lam}, cluster algorithm, {args.n_samples} configurations per point "
        f"({time.perf_counter() - start:.0f} s)"
    )
    print(
        f"{'κ':>7} "
        + " ".join(f"{'U_' + str(L):>17} {'χc_' + str(L):>15}" for L in args.sizes)
        + f" {'U_' + str(large) + '−U_' + str(small):>17}"
    )
    for i, k in enumerate(args.kappa):
        cells = []
        for L in args.sizes:
            (u, du), (c, dc) = res[L][i]["binder"], res[L][i]["susceptibility_connected"]
            cells.append(f"{u:>8.4f} ± {du:<6.4f} {c:>7.3f} ± {dc:<5.3f}")
        d = res[large][i]["binder"][0] - res[small][i]["binder"][0]
        e = math.hypot(res[large][i]["binder"][1], res[small][i]["binder"][1])
        print(f"{k:>7.4f} " + " ".join(cells) + f" {d:>+8.4f} ± {e:<6.4f}")
    cross = crossing(
        args.kappa, [r["binder"] for r in res[small]], [r["binder"] for r in res[large]]
    )
    if cross is None:
        print(f"U_{large} − U_{small} does not change sign on this grid")
    else:
        print(f"crossing U_{small} = U_{large} at κ = {cross[0]:.4f} ± {cross[1]:.4f}")
    for L in args.sizes:
        peak = max(range(len(args.kappa)), key=lambda i: res[L][i]["susceptibility_connected"][0])
        print(f"χ_conn peak on the grid, L = {L}: κ = {args.kappa[peak]}")


if __name__ == "__main__":
    main()

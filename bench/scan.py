"""The κ-scan at L = 8, λ = 0.01 against direct HMC, and
warm starts against cold starts at equal budget.

1. ``core.jobs.scan_job.run_scan_job`` over κ ∈ {0.2, 0.25, 0.27, 0.3} (each point warm-started
   from the previous point's flow, then an exact flow + Metropolis ensemble);
2. direct HMC (``run_hmc_job``, ordered starts with random signs in the broken phase —
   DESIGN §3 — and the chain-consistency check) at every point;
3. for every consecutive pair, a cold start of the second point with the same step budget
   and seed: fresh-proposal ESS/N warm against cold.

Prints the table (z = (flow − HMC)/√(σ_f² + σ_h²) for ⟨|M|⟩ and χ; sign of κ_L − κ) and
writes ``OUT/scan.png`` (fig. 4 with the HMC points) and ``OUT/scan_bench.json``.

    nice -n 10 .venv/bin/python bench/scan.py --out /tmp/scan-bench
    .venv/bin/python bench/scan.py --steps 1500 --no-cold --no-warm-start --out DIR  # cold scan
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from core.jobs.hmc_job import run_hmc_job
from core.jobs.scan_job import plot_scan, run_scan_job
from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import HmcSpec
from core.jobs.train_job import run_train_job

NAMES = ("abs_magnetization", "susceptibility")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kappas", default="0.2,0.25,0.27,0.3")
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--L", type=int, default=8)
    ap.add_argument("--steps", type=int, default=150, help="training steps per point")
    ap.add_argument("--n-samples", type=int, default=8000, help="flow ensemble per point")
    ap.add_argument("--hmc-samples", type=int, default=16000)
    ap.add_argument("--langevin-therm", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-start runs")
    ap.add_argument("--no-warm-start", action="store_true",
                    help="the scan itself trains every point from scratch (srflow scan's flag)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    kappas = [float(k) for k in args.kappas.split(",")]
    spec = ScanSpec(L=args.L, kappa=kappas, lam=[args.lam], steps_per_point=args.steps,
                    n_samples=args.n_samples, seed=args.seed,
                    langevin_therm=args.langevin_therm, warm_start=not args.no_warm_start)
    t0 = time.perf_counter()
    scan = run_scan_job(spec, workdir=args.out / "work")
    t_scan = time.perf_counter() - t0
    refs, checks = {}, {}
    for i, k in enumerate(kappas):
        hmc = run_hmc_job(HmcSpec(L=args.L, kappa=k, lam=args.lam, n_samples=args.hmc_samples,
                                  chains=16, seed=100 + i), workdir=args.out / f"hmc-{i}")
        refs[k] = hmc.summary["observables"]
        checks[k] = hmc.summary["hmc"]["chain_check"].get("consistent")
    rows = []
    for p in scan.points:
        z = {}
        for n in NAMES:
            f, h = p.observables[n], refs[p.kappa][n]
            z[n] = (f["mean"] - h["mean"]) / math.hypot(f["error"], h["error"])
        rows.append({"kappa": p.kappa, "ess": p.ess, "train_ess": p.train_ess,
                     "acceptance": p.acceptance, "kappa_shift": p.kappa_shift,
                     "flow": {n: p.observables[n] for n in NAMES},
                     "hmc": {n: refs[p.kappa][n] for n in NAMES}, "z": z,
                     "hmc_chains_consistent": checks[p.kappa], "steps": p.steps,
                     "train_seconds": p.train_seconds, "warm": p.warm_started})
    cold = []
    if not args.no_cold:
        for i in range(1, len(scan.points)):
            res = run_train_job(spec.train_spec(i), workdir=args.out / f"cold-{i}")
            warm = scan.points[i]
            cold.append({"from": scan.points[i - 1].kappa, "to": warm.kappa,
                         "steps": args.steps, "warm_ess": warm.train_ess,
                         "cold_ess": float(res.summary["ess"]),
                         "warm_seconds": warm.train_seconds,
                         "cold_seconds": float(res.summary["seconds"])})
    plot = plot_scan(scan.points, args.out / "scan.png", reference=refs)
    start = "warm-started from the previous point" if spec.warm_start else "cold"
    print(f"scan L={args.L} λ={args.lam}: {len(scan.points)} points ({start}), "
          f"{args.steps} steps each, "
          f"{args.n_samples} flow configurations, {t_scan:.0f} s; HMC {args.hmc_samples} "
          "configurations (16 chains)")
    print(f"  {'κ':>5} {'ESS/N':>6} {'acc':>5} {'κ_L−κ':>8} {'⟨|M|⟩ flow':>17} "
          f"{'⟨|M|⟩ HMC':>17} {'z':>5} {'χ flow':>15} {'χ HMC':>15} {'z':>5} chains")
    for r in rows:
        fa, ha = r["flow"]["abs_magnetization"], r["hmc"]["abs_magnetization"]
        fc, hc = r["flow"]["susceptibility"], r["hmc"]["susceptibility"]
        print(f"  {r['kappa']:>5.3g} {r['ess']:>6.3f} {r['acceptance']:>5.3f} "
              f"{r['kappa_shift']:>+8.4f} {fa['mean']:>8.4f} ± {fa['error']:<6.4f} "
              f"{ha['mean']:>8.4f} ± {ha['error']:<6.4f} {r['z']['abs_magnetization']:>+5.1f} "
              f"{fc['mean']:>7.3f} ± {fc['error']:<5.3f} {hc['mean']:>7.3f} ± "
              f"{hc['error']:<5.3f} {r['z']['susceptibility']:>+5.1f} "
              f"{r['hmc_chains_consistent']}")
    for c in cold:
        print(f"  warm {c['from']:g}→{c['to']:g}: fresh ESS/N {c['warm_ess']:.3f} "
              f"({c['warm_seconds']:.0f} s) vs cold {c['cold_ess']:.3f} "
              f"({c['cold_seconds']:.0f} s), {c['steps']} steps each")
    ok = all(abs(z) < 3 for r in rows for z in r["z"].values())
    print(f"every |z| < 3: {ok}; plot {plot}")
    (args.out / "scan_bench.json").write_text(json.dumps(
        {"rows": rows, "cold": cold, "seconds_scan": t_scan, "args": vars(args) | {
            "out": str(args.out)}}, indent=1, default=str))


if __name__ == "__main__":
    main()

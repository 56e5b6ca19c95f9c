"""Are the direct samplers' Γ-method error bars honest? Replicated runs against their errors.

    python bench/hmc_errors.py [--sizes 8 16] [--kappa 0.25] [--lam 0.01] [--runs 96]
                               [--chains 4] [--per-chain 100] [--algorithms hmc cluster flow]
                               [--flow-model L=DIR ...] [--flow-steps 150]

For each algorithm and L: ``runs`` independent runs of ``chains`` chains each, sampled the
way a job samples (thermalisation, pilot τ_int, thinning by ⌈2τ_int⌉, ``per-chain`` kept
configurations per chain) — all runs in one batch of runs × chains chains, then split —
and for ⟨|M|⟩, χ and S/V the scatter of the run means over the mean quoted Γ-method error
(core.physics.stats.gamma.calibrate; honest errors give 1, uncertain by ≈ 1/√(2(R − 1))),
τ_int on the thinned chains, and the largest |z| of a run mean against the mean of all runs.

``flow``: flow + Metropolis, each run a separate exact sample job (core.physics.exact.sample,
seed per run, chains × per-chain configurations of the Metropolis chain, 32 coarse chains
thinned by ⌈``--coarse-thin-taus``·τ_int⌉) from one trained model per L —
``--flow-model L=DIR``, or one trained here for ``--flow-steps`` steps. Its rows add the
pooled autocorrelation of |M| at lags 1-3 and at lag 32 (one coarse chain's next
configuration), and τ_int of |M| summed without a window to lag 64.

The first version of this script (8 runs against a 200 000-configuration reference) found
ratios 1.23 and 1.34 for ⟨|M|⟩ and χ, each uncertain by ±27 %: with 96 runs the same
question is answered to ±7 % (docs/benchmarks.md, "Error bars that hold").
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.jobs.specs import SampleSpec, TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import COARSE_THIN_TAUS, sample
from core.physics.lattice.observables import (
    Estimate,
    Measurements,
    abs_magnetization,
    measure,
    summarize_measurements,
)
from core.physics.mcmc.cluster import ClusterParams, run_cluster
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.stats.gamma import autocovariance, calibrate
from core.physics.training.api import train

COARSE_CHAINS = SampleSpec.model_fields["chains"].default  # as a sample job
NAMES = {"abs_magnetization": "⟨|M|⟩", "susceptibility": "χ", "action_density": "S/V"}


def _split(m: Measurements, runs: int, chains: int) -> list[Measurements]:
    out = []
    for r in range(runs):
        cols = slice(r * chains, (r + 1) * chains)
        out.append(Measurements(m.magnetization[:, cols], m.phi2[:, cols],
                                m.action_density[:, cols], m.min_momentum_power[:, cols],
                                m.volume, m.size))
    return out


def _flow_runs(L: int, args: argparse.Namespace, models: dict[int, str],
               workdir: str) -> tuple[list[dict[str, Estimate]], int, str]:
    """One exact flow + Metropolis sample per run; (estimates, coarse thinning, a note with
    the autocorrelation of |M| at lag C = the coarse chains, pooled over the runs: one coarse
    chain's successive configurations sit C proposals apart in the Metropolis chain)."""
    model = models.get(L)
    if model is None:
        spec = TrainSpec(method="ir", dim=args.dim, L=L, kappa=args.kappa, lam=args.lam,
                         steps=args.flow_steps, seed=args.seed)
        model = str(train(train_plan(spec), workdir=Path(workdir) / f"L{L}").model_dir)
    estimates, thin, abs_m = [], 1, []
    for r in range(args.runs):
        out = sample(model, n_samples=args.chains * args.per_chain, seed=args.seed + 7919 * r,
                     chains=COARSE_CHAINS, coarse_thin_taus=args.coarse_thin_taus)
        estimates.append(out.observables)
        thin = out.thin
        abs_m.append(abs_magnetization(out.configs.to(torch.float64), args.dim).numpy())
    series = np.stack(abs_m, axis=1)  # (T, runs): runs as replicas, around the global mean
    rho = autocovariance(series - series.mean())
    lags = f"ρ_|M|(t) pooled over runs: t = 1..3 {np.round(rho[1:4] / rho[0], 3).tolist()}, "
    tau_2c = 0.5 + float(rho[1 : 2 * COARSE_CHAINS + 1].sum() / rho[0])
    note = (lags + f"t = {COARSE_CHAINS} (C) {rho[COARSE_CHAINS] / rho[0]:.3f}; "
            f"τ_int summed to lag 2C {tau_2c:.3f} (against the windowed τ above)")
    return estimates, thin, note


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--kappa", type=float, default=0.25)
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--runs", type=int, default=96)
    ap.add_argument("--chains", type=int, default=4, help="chains per run")
    ap.add_argument("--per-chain", type=int, default=100, help="kept configurations per chain")
    ap.add_argument("--n-therm", type=int, default=500)
    ap.add_argument("--algorithms", nargs="+", default=["hmc", "cluster"])
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--flow-model", nargs="*", default=[], help="L=DIR: trained flow per L")
    ap.add_argument("--flow-steps", type=int, default=150, help="training steps without one")
    ap.add_argument("--coarse-thin-taus", type=float, default=COARSE_THIN_TAUS,
                    help="flow: thin the coarse chains by ⌈this·τ_int⌉ (default as a job)")
    args = ap.parse_args()
    models = {int(k): v for k, v in (item.split("=", 1) for item in args.flow_model)}
    with tempfile.TemporaryDirectory(prefix="hmc-errors-") as workdir:  # flows trained here
        _table(args, models, workdir)


def _table(args: argparse.Namespace, models: dict[int, str], workdir: str) -> None:
    """Print one calibration row per (L, algorithm)."""
    torch.set_num_threads(1)
    total = args.runs * args.chains
    print(f"d={args.dim} κ={args.kappa} λ={args.lam}: {args.runs} runs × {args.chains} chains × "
          f"{args.per_chain} kept configurations (pilot thinning, as a job); ratio = "
          f"std(run means)/mean(error), ±{1 / math.sqrt(2 * (args.runs - 1)):.2f} relative")
    print(f"{'algorithm':<9} {'L':>3} {'thin':>5} {'s':>6}  " + "  ".join(
        f"{v + ' ratio':>14} {'τ':>4} {'max|z|':>6}" for v in NAMES.values()))
    for L in args.sizes:
        for algorithm in args.algorithms:
            t0 = time.perf_counter()
            note = ""
            if algorithm == "flow":
                estimates, thin, note = _flow_runs(L, args, models, workdir)
            else:
                lattice = dict(dim=args.dim, L=L, kappa=args.kappa, lam=args.lam,
                               generator=torch.Generator().manual_seed(args.seed + L))
                schedule = dict(n_samples=total * args.per_chain, chains=total,
                                n_therm=args.n_therm)
                res = (run_hmc(params=HmcParams(**schedule), **lattice) if algorithm == "hmc"
                       else run_cluster(params=ClusterParams(**schedule), **lattice))
                meas = measure(res.configs, dim=args.dim, kappa=args.kappa, lam=args.lam)
                estimates = [summarize_measurements(m)
                             for m in _split(meas, args.runs, args.chains)]
                thin = res.thin
            seconds = time.perf_counter() - t0
            cells = []
            for key in NAMES:
                means = np.array([e[key].mean for e in estimates])
                errors = np.array([e[key].error for e in estimates])
                cal = calibrate(means, errors)
                z = np.abs(means - means.mean()) / errors
                tau = float(np.mean([e[key].tau_int for e in estimates]))
                cells.append(f"{cal.ratio:>7.2f} ± {cal.ratio_error:<4.2f} {tau:>4.2f} "
                             f"{z.max():>6.1f}")
            print(f"{algorithm:<9} {L:>3} {thin:>5} {seconds:>6.0f}  " + "  ".join(cells),
                  flush=True)
            if note:
                print(f"{'':<9} {L:>3}  {note}", flush=True)


if __name__ == "__main__":
    main()

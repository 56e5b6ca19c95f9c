"""Cost per effectively independent fine configuration: flow + Metropolis against direct HMC
and the cluster algorithm near criticality (κ = 0.25, λ = 0.01, d = 2), measured in one run.

cost(O) = seconds × 2τ_int(O) / N for O ∈ {|M|, χ}: τ_int by the Γ-method on the HMC
chains (every trajectory kept) and on the independence-Metropolis chain. The flow's
sampling seconds include its coarse HMC (thermalised, thinned by 2τ_int) and the push;
training time is shown separately and amortised over the N configurations sampled here
(the amortised figure falls as more configurations are drawn from the same model).
Prints a table and writes a PNG.

    .venv/bin/python bench/cost.py --quick      # L = 8, 16; 100 training steps (~5 min)
    .venv/bin/python bench/cost.py              # L = 8, 16, 32; 300 training steps
    .venv/bin/python bench/cost.py --tau-study  # τ_int(χ): cluster vs HMC, L = 32, 64, ξ ≈ L/4

The τ study runs both direct samplers on the near-critical line of λ = 0.01 (κ with
ξ_2nd ≈ L/4, from short cluster scans: 0.2585 at L = 32, 0.260 at L = 64; 0.241 at L = 8 and
0.254 at L = 16 for bench/cost_study.py, `--scan L`), records M, S/V and
G̃(p_min) after every HMC trajectory / cluster sweep (no configurations kept) and reports
τ_int of |M| and χ in those units, with seconds per unit and per independent χ.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import sample
from core.physics.lattice.action import action
from core.physics.lattice.observables import correlation_length_2nd, min_momentum_power, summarize
from core.physics.mcmc.cluster import ClusterParams, ClusterSampler, run_cluster
from core.physics.mcmc.hmc import HmcParams, HMCSampler, run_hmc
from core.physics.stats.gamma import gamma_method
from core.physics.training.api import train

KAPPA, LAM = 0.25, 0.01
CRITICAL = {8: 0.241, 16: 0.254, 32: 0.2585, 64: 0.260}  # ξ_2nd ≈ L/4 at λ = 0.01 (cluster scans)
TAU_STUDY_SIZES = (32, 64)


@dataclass(frozen=True)
class Cost:
    method: str
    L: int
    n: int
    seconds: float
    tau_abs_m: float
    tau_chi: float
    train_seconds: float
    extra: str

    def per_independent(self, tau: float, amortised: bool = False) -> float:
        total = self.seconds + (self.train_seconds if amortised else 0.0)
        return total * 2 * tau / self.n


def hmc_cost(L: int, n: int, device: str, seed: int) -> Cost:
    t0 = time.perf_counter()
    res = run_hmc(dim=2, L=L, kappa=KAPPA, lam=LAM,
                  generator=torch.Generator(device).manual_seed(seed), device=device,
                  params=HmcParams(n_samples=n, chains=16, thin=1, n_therm=300))
    seconds = time.perf_counter() - t0
    obs = summarize(res.configs, dim=2, kappa=KAPPA, lam=LAM)
    return Cost("HMC", L, res.configs.shape[0] * res.configs.shape[1], seconds,
                obs["abs_magnetization"].tau_int, obs["susceptibility"].tau_int, 0.0,
                f"acc {res.acceptance:.2f}, {res.n_leapfrog} steps/traj")


def cluster_cost(L: int, n: int, device: str, seed: int) -> Cost:
    t0 = time.perf_counter()
    res = run_cluster(dim=2, L=L, kappa=KAPPA, lam=LAM,
                      generator=torch.Generator(device).manual_seed(seed), device=device,
                      params=ClusterParams(n_samples=n, chains=16, thin=1, n_therm=300))
    seconds = time.perf_counter() - t0
    obs = summarize(res.configs, dim=2, kappa=KAPPA, lam=LAM)
    return Cost("cluster", L, res.configs.shape[0] * res.configs.shape[1], seconds,
                obs["abs_magnetization"].tau_int, obs["susceptibility"].tau_int, 0.0,
                f"Metropolis acc {res.acceptance:.2f}, cluster {res.cluster_fraction:.2f} V")


@dataclass(frozen=True)
class TauRow:
    method: str
    L: int
    kappa: float
    units: int
    chains: int
    seconds_per_unit: float
    xi: float
    tau_abs_m: tuple[float, float]
    tau_chi: tuple[float, float]


def tau_study(method: str, L: int, kappa: float, units: int, chains: int, device: str,
              seed: int, *, target_t: float = 0.0, max_units: int | None = None) -> TauRow:
    """Every trajectory / sweep measured: τ_int(|M|), τ_int(χ) ± error (Γ-method). With
    ``target_t`` the run is extended by blocks of units/2 until T ≥ target_t·τ_int(χ) or
    ``max_units`` (cost/study: T ≳ 50 τ_int keeps the window bias of τ_int small)."""
    g = torch.Generator(device).manual_seed(seed)
    common = dict(dim=2, L=L, chains=chains, generator=g, kappa=kappa, lam=LAM, device=device)
    step: Callable[[], object]
    if method == "HMC":
        hmc = HMCSampler(**common)  # type: ignore[arg-type]
        hmc.thermalise(500)
        step, field = hmc.trajectory, lambda: hmc.phi
    else:
        cl = ClusterSampler(**common)  # type: ignore[arg-type]
        cl.thermalise(500)
        step, field = cl.sweep, lambda: cl.phi
    m, f, s = [], [], []
    seconds, todo = 0.0, units
    while todo > 0:
        t0 = time.perf_counter()
        for _ in range(todo):
            step()
            phi = field()
            m.append(phi.mean(dim=(1, 2)).double().cpu())
            f.append(min_momentum_power(phi, 2).double().cpu())
            s.append((action(phi, kappa, LAM) / L**2).double().cpu())
        seconds += time.perf_counter() - t0
        mm = torch.stack(m).numpy()
        ga, gc = gamma_method(np.abs(mm)), gamma_method(L**2 * mm**2)
        todo = min(units // 2, (max_units or 0) - len(m))
        if len(m) >= target_t * gc.tau_int:
            todo = 0
    xi = correlation_length_2nd(float(gc.mean), float(torch.stack(f).mean()), L)
    return TauRow(method, L, kappa, len(m), chains, seconds / len(m), xi,
                  (ga.tau_int, ga.tau_int_error), (gc.tau_int, gc.tau_int_error))


def run_tau_study(units: int, chains: int, device: str, seed: int) -> None:
    print(f"τ_int near criticality, λ={LAM}, d=2, {chains} chains × {units} units "
          "(HMC: trajectories of length 1, omelyan; cluster: Metropolis sweep + 1 Wolff flip)")
    print(f"{'method':<8} {'L':>3} {'κ':>7} {'ξ_2nd':>6} {'s/unit':>8} {'τ|M|':>12} "
          f"{'τχ':>12} {'s/ind χ':>9}")
    for L in TAU_STUDY_SIZES:
        kappa = CRITICAL[L]
        for method in ("HMC", "cluster"):
            r = tau_study(method, L, kappa, units, chains, device, seed)
            print(f"{r.method:<8} {r.L:>3} {r.kappa:>7.4f} {r.xi:>6.2f} "
                  f"{r.seconds_per_unit:>8.2e} {r.tau_abs_m[0]:>6.1f}±{r.tau_abs_m[1]:<5.1f} "
                  f"{r.tau_chi[0]:>6.1f}±{r.tau_chi[1]:<5.1f} "
                  f"{r.seconds_per_unit * 2 * r.tau_chi[0] / chains:>9.2e}", flush=True)


def flow_cost(L: int, n: int, steps: int, device: str, seed: int) -> Cost:
    with tempfile.TemporaryDirectory() as tmp:
        tr = train(train_plan(TrainSpec(method="ir", dim=2, L=L, kappa=KAPPA, lam=LAM,
                                        steps=steps, device=device, seed=seed)),
                   workdir=Path(tmp))
        t0 = time.perf_counter()
        out = sample(tr.model_dir, n_samples=n, seed=seed + 1, chains=32, device=device)
        seconds = time.perf_counter() - t0
    obs = out.observables
    return Cost("flow+MH", L, out.n_proposals, seconds, obs["abs_magnetization"].tau_int,
                obs["susceptibility"].tau_int, tr.seconds,
                f"acc {out.acceptance:.2f}, ESS/N {tr.ess:.2f}")


def plot(rows: list[Cost], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, style in (("HMC", "o-"), ("cluster", "^-"), ("flow+MH", "s-")):
        sel = [r for r in rows if r.method == method]
        Ls = [r.L for r in sel]
        ax.plot(Ls, [r.per_independent(r.tau_chi) for r in sel], style, label=f"{method} χ")
        ax.plot(Ls, [r.per_independent(r.tau_abs_m) for r in sel], style, alpha=0.5,
                label=f"{method} |M|")
        if method == "flow+MH":
            ax.plot(Ls, [r.per_independent(r.tau_chi, True) for r in sel], "s:",
                    label="flow+MH χ, training amortised")
    ax.set(xscale="log", yscale="log", xlabel="L", ylabel="seconds per independent config")
    ax.set_xticks(sorted({r.L for r in rows}), [str(x) for x in sorted({r.L for r in rows})])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    ax.set_title(f"κ={KAPPA}, λ={LAM}, d=2")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--n", type=int, default=None, help="configurations per method")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/cost.png"))
    ap.add_argument("--tau-study", action="store_true",
                    help="only τ_int(χ) of cluster vs HMC at L = 32, 64 near criticality")
    ap.add_argument("--units", type=int, default=4000, help="τ study: sweeps per chain")
    ap.add_argument("--chains", type=int, default=8, help="τ study: chains")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    if args.tau_study:
        run_tau_study(args.units, args.chains, args.device, args.seed)
        return
    sizes = args.sizes or ([8, 16] if args.quick else [8, 16, 32])
    steps = args.steps or (100 if args.quick else 300)
    n = args.n or (4096 if args.quick else 16384)
    rows: list[Cost] = []
    print(f"κ={KAPPA}, λ={LAM}, d=2, {n} configurations per method, IR flow from L=4 trained "
          f"{steps} steps ({args.device})")
    print(f"{'method':<8} {'L':>3} {'N':>6} {'s':>7} {'τ|M|':>6} {'τχ':>6} {'s/ind |M|':>10} "
          f"{'s/ind χ':>9} {'train s':>8} {'χ amort.':>9}  notes")
    for L in sizes:
        for r in (hmc_cost(L, n, args.device, args.seed),
                  cluster_cost(L, n, args.device, args.seed),
                  flow_cost(L, n, steps, args.device, args.seed)):
            rows.append(r)
            print(f"{r.method:<8} {r.L:>3} {r.n:>6} {r.seconds:>7.1f} {r.tau_abs_m:>6.2f} "
                  f"{r.tau_chi:>6.2f} {r.per_independent(r.tau_abs_m):>10.2e} "
                  f"{r.per_independent(r.tau_chi):>9.2e} {r.train_seconds:>8.1f} "
                  f"{r.per_independent(r.tau_chi, True):>9.2e}  {r.extra}", flush=True)
    plot(rows, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

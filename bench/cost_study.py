"""Cost study: seconds per effectively independent configuration of direct
HMC, the cluster algorithm and flow + Metropolis, against L, on two lines of λ = 0.01, d = 2:
κ = 0.25 and the near-critical line ξ_2nd ≈ L/4 (bench/cost.py CRITICAL), with power-law fits
and crossovers up to L = 256 (bench/cost_fit.py).

    cost(O) = seconds × 2τ_int(O)/N,   O ∈ {|M|, χ = V M²}
    flow, training amortised over N_tot configurations:
    cost_N_tot(O) = (train_s + N_tot·seconds/N)·2τ_int(O)/N_tot,   N_tot ∈ {10⁴, 10⁵, 10⁶}

HMC and cluster: every trajectory / sweep measured (bench/cost.py tau_study: Γ-method on
|M| and χ over all chains), chains = max(8, 16384/L²) so every unit moves ≥ 16384 sites (a
batch as wide at L = 8 as at L = 64), thermalisation (500 units) not counted; runs are
extended until T ≥ 50 τ_int(χ) or --max-units. Flow: core.physics.exact.sampler.sample (coarse
HMC thinned by 2τ_int, push, independence Metropolis), all of it timed; τ_int on the chain.
Flows from --flow-model L=PATH (training seconds: metrics.json seconds_total, else seconds)
or, where none is given, trained here for --train-minutes (IR, the specs' defaults): figures
then differ from those of the long-trained models. Prints the table and the fits, writes
runs/cost/study.json and runs/cost/study.png.

    nice -n 5 .venv/bin/python bench/cost_study.py \\
        --flow-model 16=runs/scaling-L16-c8/models/L16-k0.25-coarse8 \\
        --flow-model 32=runs/scaling-L32-c8/models/L32-k0.25-coarse8 \\
        --flow-model 64=runs/scaling-L64/models/L64-k0.25-new
    .venv/bin/python bench/cost_study.py --sizes 8 --train-minutes 1 --units 500   # smoke
    .venv/bin/python bench/cost_study.py --scan 8 --kappas 0.24,0.25   # ξ_2nd(κ), cluster
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cost import CRITICAL, KAPPA, LAM, tau_study
from bench.cost_fit import crossover, fit_power_law
from bench.cost_report import plot_study, print_fits, print_table
from bench.cost_rows import AMORTISE, LINES, Fit, Row, cost_labels, label_cost, series
from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import sample
from core.physics.stats.gamma import gamma_method
from core.physics.training.api import train


def line_kappa(line: str, L: int) -> float:
    return KAPPA if line == "k0.25" else CRITICAL[L]


def chains_for(L: int) -> int:
    return max(8, 16384 // L**2)


def direct_row(method: str, line: str, L: int, units: int, max_units: int, device: str,
               seed: int) -> Row:
    kappa = line_kappa(line, L)
    r = tau_study(method, L, kappa, units, chains_for(L), device, seed, target_t=50.0,
                  max_units=max_units)
    return Row(method, line, L, kappa, r.units * r.chains, r.seconds_per_unit * r.units,
               r.tau_abs_m, r.tau_chi, xi=r.xi, chains=r.chains,
               notes=f"{r.chains}×{r.units}, T/τχ {r.units / r.tau_chi[0]:.0f}")


def training_seconds(model_dir: Path) -> float:
    """metrics.json: seconds_total of a grown stack (all stages), else seconds."""
    m = json.loads((model_dir / "metrics.json").read_text())
    return float(m.get("seconds_total", m["seconds"]))


def wait_for(model: Path, minutes: float) -> None:
    """A model still being trained elsewhere: poll until its three files exist."""
    deadline = time.time() + 60 * minutes
    files = ("config.json", "metrics.json", "model.safetensors")
    while not all((model / f).exists() for f in files) and time.time() < deadline:
        time.sleep(30)
    time.sleep(5)  # let the writer finish


def flow_row(line: str, L: int, model: Path | None, minutes: float, n: int, device: str,
             seed: int, workdir: Path, wait_minutes: float = 0.0) -> Row:
    kappa = line_kappa(line, L)
    origin = "given"
    if model is not None:
        wait_for(model, wait_minutes)
    else:
        spec = TrainSpec(method="ir", dim=2, L=L, kappa=kappa, lam=LAM, steps=1_000_000,
                         max_minutes=minutes, device=device, seed=seed)
        trained = train(train_plan(spec), workdir=workdir / f"{line}-L{L}")
        model, origin = trained.model_dir, "trained here"
    config = json.loads((model / "config.json").read_text())
    if config["fine_L"] != L or abs(config["theory"]["kappa"] - kappa) > 1e-9:
        raise SystemExit(f"{model}: L={config['fine_L']}, κ={config['theory']['kappa']}, "
                         f"not L={L}, κ={kappa}")
    t0 = time.perf_counter()
    out = sample(model, n_samples=n, seed=seed + 1, chains=32, device=device)
    seconds = time.perf_counter() - t0
    m = out.configs.to(torch.float64).mean(dim=(1, 2)).numpy()
    ga, gc = gamma_method(abs(m)), gamma_method(L**2 * m**2)
    return Row("flow", line, L, kappa, out.n_proposals, seconds, (ga.tau_int, ga.tau_int_error),
               (gc.tau_int, gc.tau_int_error), train_s=training_seconds(model),
               notes=f"acc {out.acceptance:.2f}, ESS/N {out.ess:.2f}, {origin}: {model}")


def fit_all(rows: list[Row]) -> list[Fit]:
    fits = []
    for line in LINES:
        by = series(rows, line)
        for label in cost_labels(list(by)):
            sel = by[label.split("@")[0]]
            if len({r.L for r in sel}) < 2:
                continue
            Ls = [r.L for r in sel]
            quantities = ["cost_chi"] if "@" in label else ["tau_m", "tau_chi", "cost_m",
                                                            "cost_chi"]
            for q in quantities:
                obs = "chi" if q.endswith("chi") else "m"
                if q.startswith("tau"):
                    vals = [(r.tau_chi if obs == "chi" else r.tau_m) for r in sel]
                    law = fit_power_law(Ls, [v[0] for v in vals], [v[1] / v[0] for v in vals])
                else:
                    law = fit_power_law(Ls, [label_cost(label, r, obs) for r in sel],
                                        [r.rel_error(obs) for r in sel])
                fits.append(Fit(line, label, q, Ls, law))
    return fits


def crossovers(fits: list[Fit]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for line in LINES:
        cost = [f for f in fits if f.line == line and f.quantity == "cost_chi"]
        for i, f in enumerate(cost):
            for g in cost[i + 1:]:
                if f.label.startswith("flow") and g.label.startswith("flow"):
                    continue
                c = crossover(f.law, g.law, (f.label, g.label))
                out.append({"line": line, "pair": [f.label, g.label],
                            "crossover": None if c is None else asdict(c)})
    return out


def scan(L: int, kappas: list[float], units: int, device: str, seed: int) -> None:
    """ξ_2nd(κ) with the cluster algorithm: where ξ_2nd ≈ L/4 (for CRITICAL)."""
    for kappa in kappas:
        r = tau_study("cluster", L, kappa, units, chains_for(L), device, seed)
        print(f"L={L} κ={kappa:.4f} ξ_2nd={r.xi:.3f} (L/4 = {L / 4}) τχ={r.tau_chi[0]:.1f}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[8, 16, 32, 64])
    ap.add_argument("--lines", nargs="*", default=list(LINES), choices=LINES)
    ap.add_argument("--flow-model", action="append", default=[], metavar="L=PATH")
    ap.add_argument("--flow-sizes", type=int, nargs="*", default=None,
                    help="κ = 0.25 line; default: 8 and every --flow-model size")
    ap.add_argument("--flow-sizes-critical", type=int, nargs="*", default=[8, 16])
    ap.add_argument("--train-minutes", type=float, default=4.0)
    ap.add_argument("--wait-model-minutes", type=float, default=0.0,
                    help="wait for a --flow-model still being trained")
    ap.add_argument("--flow-n", type=int, default=4096, help="flow configurations per size")
    ap.add_argument("--units", type=int, default=4000, help="least units per direct run")
    ap.add_argument("--max-units", type=int, default=16000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/cost"))
    ap.add_argument("--gpu-report", type=Path, default=None, help="bench/gpu_check.sh JSON")
    ap.add_argument("--scan", type=int, default=None, metavar="L")
    ap.add_argument("--kappas", default="")
    ap.add_argument("--report-only", action="store_true",
                    help="fits, table and plot from OUT/rows.json of an earlier run")
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)
    if args.scan is not None:
        scan(args.scan, [float(k) for k in args.kappas.split(",")], args.units, args.device,
             args.seed)
        return
    models = {int(k): Path(v) for k, v in (s.split("=", 1) for s in args.flow_model)}
    flow_sizes = {"k0.25": args.flow_sizes or sorted({8, *models}),
                  "xi_L4": args.flow_sizes_critical}
    load0, t_start = os.getloadavg(), time.perf_counter()
    rows: list[Row] = []
    saved = args.out / "rows.json"  # after every row: --report-only redoes fits and plot
    if args.report_only:
        rows = [Row(**(d | {"tau_m": tuple(d["tau_m"]), "tau_chi": tuple(d["tau_chi"])}))
                for d in json.loads(saved.read_text())]
    for line in [] if args.report_only else args.lines:
        for L in args.sizes:
            for method in ("HMC", "cluster"):
                rows.append(direct_row(method, line, L, args.units, args.max_units,
                                       args.device, args.seed))
                print_table(rows[-1:], header=len(rows) == 1)
            if L in flow_sizes[line]:
                rows.append(flow_row(line, L, models.get(L) if line == "k0.25" else None,
                                     args.train_minutes, args.flow_n, args.device, args.seed,
                                     args.out / "models", args.wait_model_minutes))
                print_table(rows[-1:], header=False)
            saved.parent.mkdir(parents=True, exist_ok=True)
            saved.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    print(f"\nλ={LAM}, d=2, {args.device}; load average {load0} at start, {os.getloadavg()} "
          f"at end; {time.perf_counter() - t_start:.0f} s\n")
    print_table(rows)
    fits = fit_all(rows)
    cross = crossovers(fits)
    print_fits(fits, cross)
    gpu = json.loads(args.gpu_report.read_text()) if args.gpu_report else None
    if gpu is not None:
        print(f"\nGPU ({gpu.get('device')}): flow/HMC independent-config rate "
              f"{gpu.get('flow_vs_hmc')} at its point (bench/gpu_check.sh)")
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"rows": [asdict(r) | {"cost_m": r.cost("m"), "cost_chi": r.cost("chi"),
                                    **{f"cost_chi_{n:.0e}": r.cost("chi", n) for n in AMORTISE}}
                       for r in rows],
              "fits": [f.summary() for f in fits], "crossovers": cross, "gpu": gpu,
              "load_start": load0, "load_end": os.getloadavg(), "argv": vars(args) | {
                  "out": str(args.out), "gpu_report": str(args.gpu_report)}}
    (args.out / "study.json").write_text(json.dumps(record, indent=1, default=str))
    plot_study(rows, fits, args.out / "study.png")
    print(f"wrote {args.out / 'study.json'} and {args.out / 'study.png'}")


if __name__ == "__main__":
    main()

"""Free energies: the flow's log Z against thermodynamic integration on the fine lattice.

``check`` — d = 2, κ = 0.25, λ = 0.01 at L = 8 and 16: one flow per L (`srflow train`
defaults, a short budget), then R independent replicas of (a) a sample job's log Z (its own
coarse thermodynamic integration each time: a fresh cache per replica, so the quoted error's
coarse part is replicated too) and (b) fine-lattice thermodynamic integration in κ
(core.physics.mcmc.thermodynamic, Gauss–Legendre 8 + 16 nodes). Prints the two means with
the z of their difference, and for each method scatter / mean quoted error (honest: 1 ± 0.25;
core.physics.stats.gamma.calibrate gives its own uncertainty).

``cost`` — CPU seconds to reach a stated error ε_f on f = −log Z/V at each (L, κ): flow
sampling alone (a sample job: coarse HMC, push, Metropolis, log Z_c by integration, the
solver check), the flow with its training, and fine-lattice integration. One measured run
each; the cost to ε_f is extrapolated as t·(σ/ε)² (errors fall as 1/√cost), and a flow needs
at least 100/ESS proposals before its error can be trusted (core.physics.stats.free_energy),
so its sampling cost is t·max((σ/ε)², N_min/N). The integration's quadrature error (|I_16 −
I_8|) does not fall with samples: where it exceeds ε the row says so.

    .venv/bin/python bench/free_energy.py check --runs 32
    .venv/bin/python bench/free_energy.py cost --sizes 16,32,64 --kappas 0.25 \\
        --train-minutes 3,6,10 --target-f 1e-5
    .venv/bin/python bench/free_energy.py cost --model runs/scaling/models/L32-k0.2585-new

Every time reported is CPU seconds of this one-thread process (time.process_time), so other
work on the machine's 2 cores does not count; the load average is printed beside.
``--clock cpu`` (the default) gives the training budgets in CPU seconds too
(time.perf_counter reads the same clock); ``--clock wall`` leaves them wall-clock. Results
append to runs/free_energy/<mode>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from core.jobs.sample_job import run_sample_job
from core.jobs.specs import SampleSpec, TrainSpec
from core.jobs.train_job import run_train_job
from core.physics.mcmc.thermodynamic import TiParams, integrate_kappa
from core.physics.stats.free_energy import MIN_EFFECTIVE
from core.physics.stats.gamma import calibrate

LAM = 0.01
OUT = Path("runs/free_energy")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def train_flow(L: int, kappa: float, minutes: float, workdir: Path, seed: int) -> tuple[Path,
                                                                                         float]:
    """A flow as `srflow train` makes it within ``minutes`` (CPU with --clock cpu)."""
    spec = TrainSpec(method="ir", dim=2, L=L, kappa=kappa, lam=LAM, steps=1_000_000,
                     max_minutes=minutes, seed=seed)
    t0 = time.process_time()
    res = run_train_job(spec, workdir=workdir)
    assert res.model_dir is not None
    print(f"  trained L={L} κ={kappa}: ESS/N {res.summary['ess']:.3f} in "
          f"{time.process_time() - t0:.0f} CPU s (load {load()})", flush=True)
    return res.model_dir, time.process_time() - t0


def flow_log_z(model: Path, n: int, seed: int, work: Path) -> dict[str, Any]:
    """A sample job's log Z with a fresh log Z_c cache; CPU seconds of the whole job."""
    t0 = time.process_time()
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        res = run_sample_job(SampleSpec(model=str(model), n_samples=n, seed=seed),
                             workdir=Path(tmp) / "s", cache_dir=Path(tmp) / "cache")
    fe = res.summary["free_energy"]
    return {"log_z": fe["log_z"], "error": fe["error"], "fine_error": fe["fine_error"],
            "coarse_error": fe["coarse"]["error"], "ess": fe["weights"]["ess"], "n": n,
            "caveats": [c["code"] for c in fe["caveats"]], "cpu": time.process_time() - t0,
            "coarse_cpu": fe["coarse_integration"]["cpu_seconds"],
            "solver_shift": fe["solver_shift"]}


def fine_ti(L: int, kappa: float, samples: int, seed: int) -> dict[str, Any]:
    t0 = time.process_time()
    ti = integrate_kappa(dim=2, L=L, kappa=kappa, lam=LAM, params=TiParams(samples=samples),
                         generator=torch.Generator().manual_seed(seed))
    return {"log_z": ti.log_z, "error": ti.error, "quadrature_error": ti.quadrature_error,
            "converged": ti.quadrature_converged, "cpu": time.process_time() - t0,
            "samples": samples}


def save(mode: str, row: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{mode}.json", "a") as fh:
        fh.write(json.dumps(row) + "\n")


def cmd_check(args: argparse.Namespace) -> None:
    print(f"check: d=2, κ={args.kappa}, λ={LAM}; load {load()}")
    for L, minutes in zip(args.sizes, args.train_minutes, strict=True):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model, _ = train_flow(L, args.kappa, minutes, work / "train", seed=0)
            flows, tis = [], []
            for r in range(args.runs):
                flows.append(flow_log_z(model, args.n_samples, 100 + r, work))
                tis.append(fine_ti(L, args.kappa, args.ti_samples, 200 + r))
                print(f"  L={L} run {r}: flow {flows[-1]['log_z']:.5f} ± {flows[-1]['error']:.4f}"
                      f" ({','.join(flows[-1]['caveats']) or 'no caveats'}), TI "
                      f"{tis[-1]['log_z']:.5f} ± {tis[-1]['error']:.4f} (load {load()})",
                      flush=True)
        row: dict[str, Any] = {"L": L, "kappa": args.kappa, "runs": args.runs,
                               "train_minutes": minutes, "n_samples": args.n_samples,
                               "ti_samples": args.ti_samples}
        for name, rows in (("flow", flows), ("ti", tis)):
            means = [x["log_z"] for x in rows]
            errors = [x["error"] for x in rows]
            cal = calibrate(means, errors)
            m = sum(means) / len(means)
            row[name] = {"mean": m, "error_of_mean": cal.scatter / math.sqrt(len(means)),
                         "ratio": cal.ratio, "ratio_error": cal.ratio_error,
                         "mean_quoted": cal.mean_error,
                         "cpu_per_run": sum(x["cpu"] for x in rows) / len(rows)}
        f, t = row["flow"], row["ti"]
        row["z"] = (f["mean"] - t["mean"]) / math.hypot(f["error_of_mean"], t["error_of_mean"])
        row["caveated_runs"] = sum(bool(x["caveats"]) for x in flows)
        save("check", row)
        print(f"L={L}: flow {f['mean']:.5f} ± {f['error_of_mean']:.5f} (scatter/quoted "
              f"{f['ratio']:.2f} ± {f['ratio_error']:.2f}); TI {t['mean']:.5f} ± "
              f"{t['error_of_mean']:.5f} ({t['ratio']:.2f} ± {t['ratio_error']:.2f}); "
              f"z = {row['z']:+.2f}; runs with caveats {row['caveated_runs']}/{args.runs}; "
              f"CPU s per run: flow {f['cpu_per_run']:.1f}, TI {t['cpu_per_run']:.1f}")


def stored_point(model: Path) -> tuple[int, float]:
    """(L, κ) of a trained model directory (d = 2, λ = 0.01 expected)."""
    config = json.loads((model / "config.json").read_text())
    theory = config["theory"]
    if config["dim"] != 2 or abs(theory["lam"] - LAM) > 1e-12:
        raise SystemExit(f"--model {model}: this bench is d = 2, λ = {LAM}")
    return int(config["fine_L"]), float(theory["kappa"])


def cost_to(sigma: float, target: float, cpu: float, n_min_ratio: float = 0.0) -> float:
    """CPU seconds to error ``target`` from one run of ``cpu`` seconds with error ``sigma``."""
    return cpu * max((sigma / target) ** 2, n_min_ratio)


def cmd_cost(args: argparse.Namespace) -> None:
    print(f"cost: d=2, λ={LAM}, ε_f = {args.target_f:g}; load {load()}")
    header = (f"{'L':>3} {'κ':>6} {'ESS/N':>6} {'flow log Z':>17} {'TI log Z':>17} {'quad':>7} "
              f"{'z':>5} | CPU s to ε_f: {'flow':>9} {'flow+train':>10} {'TI':>9}")
    print(header)
    todo: list[tuple[int, float, float | Path]] = [
        (L, kappa, minutes) for L, minutes in zip(args.sizes, args.train_minutes, strict=True)
        for kappa in args.kappas]
    todo += [(*stored_point(m), m) for m in args.model]
    for L, kappa, minutes_or_model in todo:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if isinstance(minutes_or_model, Path):  # a stored model: its own training CPU s
                model, minutes = minutes_or_model, float("nan")
                t_train = float(json.loads((model / "metrics.json").read_text())
                                .get("seconds_total", float("nan")))
            else:
                minutes = minutes_or_model
                model, t_train = train_flow(L, kappa, minutes, work / "train", seed=0)
            flow = flow_log_z(model, args.n_samples, 1, work)
        ti = fine_ti(L, kappa, args.ti_samples, 2)
        eps = args.target_f * L**2  # the error on log Z that gives ε_f on f
        n_min = MIN_EFFECTIVE / max(flow["ess"], 1e-12) / flow["n"]
        c_flow = cost_to(flow["error"], eps, flow["cpu"], n_min)
        c_ti = cost_to(ti["error"], eps, ti["cpu"])
        row = {"L": L, "kappa": kappa, "train_minutes": minutes, "train_cpu": t_train,
               "flow": flow, "ti": ti, "target_f": args.target_f,
               "cost_flow": c_flow, "cost_flow_train": c_flow + t_train, "cost_ti": c_ti,
               "ti_quadrature_limited": bool(ti["quadrature_error"] > eps),
               "z": (flow["log_z"] - ti["log_z"]) / math.hypot(flow["error"], ti["error"]),
               "load": load()}
        save("cost", row)
        quad = f"{ti['quadrature_error']:.2g}" + ("!" if row["ti_quadrature_limited"] else "")
        print(f"{L:>3} {kappa:>6} {flow['ess']:>6.3f} {flow['log_z']:>10.4f}±"
              f"{flow['error']:<6.2g} {ti['log_z']:>10.4f}±{ti['error']:<6.2g} {quad:>7} "
              f"{row['z']:>+5.1f} | {c_flow:>23.3g} {c_flow + t_train:>10.3g} "
              f"{c_ti:>9.3g}   caveats: {','.join(flow['caveats']) or '-'} "
              f"(load {row['load']})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("check", "cost"))
    ap.add_argument("--sizes", default=None, help="L values (check: 8,16; cost: 16,32,64)")
    ap.add_argument("--train-minutes", default=None,
                    help="training budget per L (check: 1,3; cost: 3,6,10)")
    ap.add_argument("--kappa", type=float, default=0.25, help="check: κ")
    ap.add_argument("--kappas", default="0.25", help="cost: κ values, e.g. 0.25,0.26")
    ap.add_argument("--runs", type=int, default=32, help="check: replicas per L")
    ap.add_argument("--n-samples", type=int, default=None,
                    help="flow proposals per run (check: 2000; cost: 4096)")
    ap.add_argument("--ti-samples", type=int, default=None,
                    help="configurations per chain per node (check: 400; cost: 200)")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="cost: also a stored model (its L, κ; training CPU s from its "
                         "metrics.json), e.g. a near-critical one from bench/scaling.py")
    ap.add_argument("--target-f", type=float, default=1e-5, help="cost: ε_f on f = −log Z/V")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    args = ap.parse_args()
    check = args.mode == "check"
    if not check and args.model and args.sizes is None:  # only the stored models
        args.sizes, args.train_minutes = "", ""
    args.sizes = [int(x) for x in (("8,16" if check else "16,32,64") if args.sizes is None
                                   else args.sizes).split(",") if x]
    args.train_minutes = [float(x) for x in (("1,3" if check else "3,6,10")
                                             if args.train_minutes is None
                                             else args.train_minutes).split(",") if x]
    args.kappas = [float(x) for x in args.kappas.split(",")]
    args.n_samples = args.n_samples or (2000 if check else 4096)
    args.ti_samples = args.ti_samples or (400 if check else 200)
    torch.set_num_threads(1)
    if args.clock == "cpu":
        time.perf_counter = time.process_time  # training budgets in CPU seconds
    (cmd_check if check else cmd_cost)(args)


if __name__ == "__main__":
    main()

"""The device check behind bench/gpu_check.sh (see there): flows against direct HMC and the
cluster algorithm on one GPU, with the batch and compile sweeps of bench/gpu_sweeps.py.

Parts (report keys), run in this order, each guarded (a failure is recorded as its
``error`` and the next part runs), the JSON report rewritten after each:

    train        κ = 0.25: default TrainSpec (ir, grown), sample, direct HMC beside it
    critical     near-critical κ_c (ξ ≈ L/4, bench/cost.py CRITICAL): train, sample
    hmc          direct HMC at κ_c for a fixed time: configs/s, τ_int(χ), independent χ/s
    cluster      the cluster algorithm likewise (on the CPU if it fails on CUDA)
    ratios       flow / HMC and flow / cluster per independent χ at κ_c
    batch_sweep  s/step, configs/s of training and of the push against the batch
    compiled     the push with torch.compile of the fields beside eager, max |Δ log q|
    compiled_step  one optimiser step likewise (last: compiling the backward takes longest)

    .venv/bin/python bench/gpu_check.py                        # L = 64, ≈ 9 min on one GPU
    .venv/bin/python bench/gpu_check.py --device cpu --quick   # L = 16, seconds: a smoke test
    .venv/bin/python bench/gpu_check.py --parts compiled,batch_sweep
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cost import CRITICAL, KAPPA, LAM
from bench.gpu_sweeps import Point, batch_sweep, compiled_push, compiled_step, direct_rate
from core.jobs.specs import Device, TrainSpec
from core.jobs.train_job import run_train_job
from core.physics.exact.sampler import sample
from core.physics.io.flow_files import read_config
from core.physics.stats.gamma import gamma_method

PARTS = ("train", "critical", "hmc", "cluster", "ratios", "batch_sweep", "compiled",
         "compiled_step")


@dataclass(frozen=True)
class CheckPlan:
    """What one run measures. Flows: the default TrainSpec trained ``train_minutes`` (None:
    ``train_steps`` steps), ``langevin_therm``/``eval_samples`` None keeping TrainSpec's, then
    ``n_samples`` drawn; direct HMC beside the κ = 0.25 flow for ``hmc_seconds``; HMC and
    the cluster algorithm at ``kappa_c`` for ``mcmc_seconds`` each on ``mcmc_chains``
    chains; the sweeps at ``batches`` and ``compile_batch`` (``sweep_therm`` Langevin steps
    of thermalisation, ``warmup`` untimed calls, ``timed`` timed ones)."""

    L: int
    kappa_c: float
    train_minutes: float | None
    train_steps: int
    n_samples: int
    hmc_seconds: float
    mcmc_seconds: float
    mcmc_chains: int
    batches: tuple[int, ...]
    compile_batch: int
    langevin_therm: int | None
    eval_samples: int | None
    sweep_therm: int
    warmup: int
    timed: int


FULL = CheckPlan(L=64, kappa_c=CRITICAL[64], train_minutes=1.5, train_steps=1_000_000,
                 n_samples=8192, hmc_seconds=20.0, mcmc_seconds=25.0, mcmc_chains=256,
                 batches=(64, 128, 256, 512, 1024), compile_batch=256, langevin_therm=None,
                 eval_samples=None, sweep_therm=500, warmup=3, timed=5)
QUICK = CheckPlan(L=16, kappa_c=CRITICAL[16], train_minutes=None, train_steps=3,
                  n_samples=128, hmc_seconds=1.0, mcmc_seconds=1.0, mcmc_chains=8,
                  batches=(16, 32), compile_batch=16, langevin_therm=100, eval_samples=64,
                  sweep_therm=50, warmup=1, timed=2)


def flow_point(plan: CheckPlan, kappa: float, device: Device, seed: int) -> dict[str, Any]:
    """Train the default IR flow at (L, κ, λ = 0.01), then sample ``n_samples`` from it
    (core.physics.exact.sampler.sample: coarse HMC, push, Metropolis; all of it timed)."""
    spec = TrainSpec(method="ir", dim=2, L=plan.L, kappa=kappa, lam=LAM, steps=plan.train_steps,
                     max_minutes=plan.train_minutes, device=device, seed=seed,
                     langevin_therm=plan.langevin_therm, eval_samples=plan.eval_samples)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_train_job(spec, workdir=Path(tmp))
        train_wall = time.perf_counter() - t0
        model = Path(res.model_dir or tmp)
        metrics = json.loads((model / "metrics.json").read_text())
        curve = metrics["curve"]
        last = curve[-min(len(curve), 50):]
        s_step = (last[-1]["wall"] - last[0]["wall"]) / max(len(last) - 1, 1)
        out: dict[str, Any] = {
            "L": plan.L, "kappa": kappa, "lam": LAM, "train_wall_s": train_wall,
            "ess_fresh": res.summary["ess"], "steps": res.summary["steps"],
            "final_stage_s_per_step": s_step, "grow": metrics.get("grow"),
            "couplings": res.summary["couplings"], "solver_gap": res.summary["solver_gap"],
            "kernel_size": read_config(model).kernel_size,
            "curve": [{k: c.get(k) for k in ("step", "wall", "ess", "L")}
                      for c in curve[::max(len(curve) // 200, 1)]]}
        print(f"  train: {train_wall:.0f} s, {res.summary['steps']} steps, final stage "
              f"{s_step:.3f} s/step, fresh ESS/N {res.summary['ess']:.3f}", flush=True)
        t0 = time.perf_counter()
        smp = sample(model, n_samples=plan.n_samples, seed=seed + 2, chains=64, device=device)
        wall = time.perf_counter() - t0
    rate = plan.n_samples / wall
    m = smp.configs.to(torch.float64).mean(dim=(1, 2)).numpy()
    tau_chi = gamma_method(plan.L**2 * m**2).tau_int
    out["sample"] = {"n": plan.n_samples, "wall_s": wall, "configs_per_s": rate, "ess": smp.ess,
                     "acceptance": smp.acceptance, "ess_x_configs_per_s": smp.ess * rate,
                     "ode_consistency": smp.ode_consistency, "tau_int_chi": tau_chi,
                     "independent_chi_per_s_by_tau": rate / max(2 * tau_chi, 1.0)}
    print(f"  sample: {rate:.1f} configs/s, ESS/N {smp.ess:.3f}, acceptance "
          f"{smp.acceptance:.3f}, ESS/N × configs/s {smp.ess * rate:.1f}; chain τ_int(χ) "
          f"{tau_chi:.2f}", flush=True)
    return out


def part_train(plan: CheckPlan, device: Device) -> dict[str, Any]:
    out = flow_point(plan, KAPPA, device, seed=0)
    hmc = direct_rate("hmc", L=plan.L, kappa=KAPPA, lam=LAM, seconds=plan.hmc_seconds,
                      chains=plan.mcmc_chains, device=device, seed=1)
    out["hmc"] = hmc
    out["flow_vs_hmc"] = out["sample"]["ess_x_configs_per_s"] / hmc["independent_chi_per_s"]
    print(f"  flow (ESS/N × configs/s) / HMC independent χ/s = {out['flow_vs_hmc']:.3g}")
    return out


CPU_CHAINS = 16  # the cluster algorithm's fallback on the CPU: its untimed thermalisation


def part_cluster(plan: CheckPlan, device: Device) -> dict[str, Any]:
    """The cluster algorithm on ``device``; if that fails, on the CPU with at most
    CPU_CHAINS chains (recorded in ``note``)."""
    kw: dict[str, Any] = dict(L=plan.L, kappa=plan.kappa_c, lam=LAM, seconds=plan.mcmc_seconds,
                              seed=4)
    try:
        return direct_rate("cluster", device=device, chains=plan.mcmc_chains, **kw)
    except Exception as err:
        if device == "cpu":
            raise
        failed = f"{type(err).__name__}: {err}"
    print(f"  failed on {device} ({failed.splitlines()[0]}): on the CPU instead", flush=True)
    out = direct_rate("cluster", device="cpu", chains=min(plan.mcmc_chains, CPU_CHAINS), **kw)
    out["note"] = f"ran on the CPU: on {device} it failed with {failed}"
    return out


def part_ratios(report: dict[str, Any]) -> dict[str, Any]:
    """Flow (ESS/N × configs/s of the Metropolis-corrected sampler) against each direct
    sampler's independent χ per second, at κ_c; ``_by_tau``: the flow's chain τ_int(χ)."""
    crit = report.get("critical", {})
    if "sample" not in crit:
        raise RuntimeError("no near-critical flow figures (part 'critical' failed or skipped)")
    flow = crit["sample"]["ess_x_configs_per_s"]
    out: dict[str, Any] = {"flow_independent_chi_per_s": flow}
    missing = []
    for name in ("hmc", "cluster"):
        direct = report.get(name, {}).get("independent_chi_per_s")
        if not direct:
            missing.append(f"no {name} figure")
            continue
        out[f"flow_vs_{name}"] = flow / direct
        out[f"flow_vs_{name}_by_tau"] = crit["sample"]["independent_chi_per_s_by_tau"] / direct
        print(f"  flow / {name} per independent χ: {out[f'flow_vs_{name}']:.3g} "
              f"(by the chain's τ_int: {out[f'flow_vs_{name}_by_tau']:.3g})")
    if missing:
        out["error"] = "; ".join(missing)
    return out


def run_part(report: dict[str, Any], name: str, fn: Callable[[], dict[str, Any]],
             save: Callable[[], None]) -> None:
    """Run one part; its figures or its error string go into the report, which is saved."""
    print(f"{name}:", flush=True)
    t0 = time.perf_counter()
    try:
        result = fn()
    except Exception as err:  # recorded; the check goes on with the next part
        result = {"error": f"{type(err).__name__}: {err}"}
        print(f"  failed: {result['error'].splitlines()[0]}", flush=True)
    result["part_wall_s"] = time.perf_counter() - t0
    report[name] = result
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    save()


def check_plan(args: argparse.Namespace) -> CheckPlan:
    """The preset (QUICK with --quick, else FULL) with the options given on the line."""
    base = QUICK if args.quick else FULL
    given = {"L": args.L, "kappa_c": args.kappa_c, "train_minutes": args.minutes,
             "n_samples": args.n_samples, "hmc_seconds": args.hmc_seconds,
             "mcmc_seconds": args.mcmc_seconds, "mcmc_chains": args.mcmc_chains,
             "compile_batch": args.compile_batch,
             "batches": tuple(int(b) for b in args.batches.split(",")) if args.batches else None}
    plan = replace(base, **{k: v for k, v in given.items() if v is not None})
    if args.L is not None and args.kappa_c is None:
        if args.L not in CRITICAL:
            raise SystemExit(f"gpu_check: --L {args.L} has no near-critical κ in bench/cost.py "
                             f"CRITICAL ({sorted(CRITICAL)}): give --kappa-c")
        plan = replace(plan, kappa_c=CRITICAL[args.L])
    return plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="L = 16, budgets of seconds")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                    help="cpu only for a smoke test of this script")
    ap.add_argument("--minutes", type=float, help="training budget of each flow (default 1.5)")
    ap.add_argument("--L", type=int)
    ap.add_argument("--kappa-c", type=float, help="near-critical κ (default CRITICAL[L])")
    ap.add_argument("--n-samples", type=int)
    ap.add_argument("--hmc-seconds", type=float, help="direct HMC at κ = 0.25")
    ap.add_argument("--mcmc-seconds", type=float, help="HMC and cluster, each, at κ_c")
    ap.add_argument("--mcmc-chains", type=int)
    ap.add_argument("--batches", help="comma-separated, e.g. 64,128,256,512,1024")
    ap.add_argument("--compile-batch", type=int)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"subset of {','.join(PARTS)}")
    args = ap.parse_args()
    dev: Device = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch (torch.cuda.is_available() is False):"
              " run this on the GPU machine", file=sys.stderr)
        return 3
    parts = [p for p in args.parts.split(",") if p]
    if unknown := sorted(set(parts) - set(PARTS)):
        print(f"gpu_check: --parts {','.join(unknown)} unknown: use {','.join(PARTS)}",
              file=sys.stderr)
        return 2
    plan = check_plan(args)
    out = Path(os.environ.get("OUT") or "runs/gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu (smoke test)"
    report: dict[str, Any] = {"device": name, "torch": torch.__version__, "L": plan.L,
                              "plan": asdict(plan), "parts": parts}
    started = time.perf_counter()

    def save() -> None:
        report["wall_s"] = time.perf_counter() - started
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    print(f"gpu_check on {name}, L = {plan.L}, κ = {KAPPA} and κ_c = {plan.kappa_c}, λ = {LAM}")
    point = Point(L=plan.L, kappa=plan.kappa_c, lam=LAM, device=dev,
                  langevin_therm=plan.sweep_therm, warmup=plan.warmup, timed=plan.timed)
    mcmc: dict[str, Any] = dict(L=plan.L, kappa=plan.kappa_c, lam=LAM, seconds=plan.mcmc_seconds,
                                chains=plan.mcmc_chains, device=dev)

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "train": lambda: part_train(plan, dev),
        "critical": lambda: flow_point(plan, plan.kappa_c, dev, seed=10),
        "hmc": lambda: direct_rate("hmc", seed=3, **mcmc),
        "cluster": lambda: part_cluster(plan, dev), "ratios": lambda: part_ratios(report),
        "batch_sweep": lambda: batch_sweep(point, plan.batches),
        "compiled": lambda: compiled_push(point, plan.compile_batch),
        "compiled_step": lambda: compiled_step(point, plan.compile_batch)}
    for part in PARTS:
        if part in parts:
            run_part(report, part, runs[part], save)
    print(f"report: {out / 'gpu_check.json'} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

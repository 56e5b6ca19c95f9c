"""The device check behind bench/gpu_check.sh (see there): flow vs direct HMC on CUDA."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_job import run_train_job
from core.physics.exact.sampler import sample
from core.physics.io.flow_files import read_config
from core.physics.lattice.observables import measure
from core.physics.mcmc.hmc import HmcParams, run_hmc
from core.physics.stats.gamma import gamma_method


def _hmc(L: int, device: str, seconds: float) -> dict[str, float]:
    """Direct HMC at the target couplings for a fixed wall time: configs/s and the
    independent configurations per second (|M|'s τ_int on the kept chain)."""
    gen = torch.Generator(device=device).manual_seed(1)
    t0 = time.perf_counter()
    res = run_hmc(dim=2, L=L, kappa=0.25, lam=0.01, generator=gen, device=device,
                  params=HmcParams(n_samples=100_000, chains=64, dtype=torch.float32, n_therm=200,
                                   max_seconds=seconds))
    wall = time.perf_counter() - t0
    m = measure(res.configs.double(), dim=2, kappa=0.25, lam=0.01)
    est = gamma_method(abs(m.magnetization))
    n = int(res.configs.shape[0] * res.configs.shape[1])
    return {"seconds": wall, "configs": n, "configs_per_s": n / wall, "thin": res.thin,
            "tau_int_abs_m": float(est.tau_int),
            "independent_per_s": n / wall / max(2 * float(est.tau_int), 1.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=5.0, help="training budget")
    ap.add_argument("--L", type=int, default=64)
    ap.add_argument("--n-samples", type=int, default=8192)
    ap.add_argument("--hmc-seconds", type=float, default=60.0)
    ap.add_argument("--device", default="cuda", help="cpu only for a smoke test of this script")
    args = ap.parse_args()
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible to torch (torch.cuda.is_available() is False):"
              " run this on the GPU machine", file=sys.stderr)
        return 3
    out = Path(os.environ.get("OUT") or "runs/gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu (smoke test)"
    report: dict[str, object] = {"device": name,
                                 "torch": torch.__version__, "L": args.L}

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    spec = TrainSpec(method="ir", dim=2, L=args.L, kappa=0.25, lam=0.01, steps=100_000,
                     max_minutes=args.minutes, device=dev)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_train_job(spec, workdir=Path(tmp))
        train_wall = time.perf_counter() - t0
        metrics = json.loads((Path(res.model_dir or tmp) / "metrics.json").read_text())
        curve = metrics["curve"]
        last = curve[-min(len(curve), 50):]
        s_step = (last[-1]["wall"] - last[0]["wall"]) / max(len(last) - 1, 1)
        report["train"] = {"wall_s": train_wall, "ess_fresh": res.summary["ess"],
                           "steps": res.summary["steps"], "final_stage_s_per_step": s_step,
                           "grow": metrics.get("grow"), "couplings": res.summary["couplings"],
                           "solver_gap": res.summary["solver_gap"]}
        report["train"]["curve"] = [{k: c.get(k) for k in ("step", "wall", "ess", "L")}
                                    for c in curve[::max(len(curve) // 200, 1)]]
        report["kernel_size"] = read_config(res.model_dir or tmp).kernel_size
        save()  # a run killed later still returns its training figures
        print(f"train: {train_wall:.0f} s, {res.summary['steps']} steps, final stage "
              f"{s_step:.3f} s/step, fresh ESS/N {res.summary['ess']:.3f}")
        t0 = time.perf_counter()
        smp = sample(res.model_dir or tmp, n_samples=args.n_samples, seed=2, chains=64,
                     device=dev)
        wall = time.perf_counter() - t0
    rate = args.n_samples / wall
    report["sample"] = {"wall_s": wall, "configs_per_s": rate, "ess": smp.ess,
                        "acceptance": smp.acceptance, "ess_x_configs_per_s": smp.ess * rate,
                        "ode_consistency": smp.ode_consistency}
    print(f"sample: {rate:.1f} configs/s, ESS/N {smp.ess:.3f}, acceptance "
          f"{smp.acceptance:.3f}, ESS/N × configs/s {smp.ess * rate:.1f}")
    save()
    hmc = _hmc(args.L, dev, args.hmc_seconds)
    report["hmc"] = hmc
    print(f"direct HMC: {hmc['configs_per_s']:.1f} configs/s, τ_int(|M|) "
          f"{hmc['tau_int_abs_m']:.2f} → {hmc['independent_per_s']:.1f} independent/s")
    report["flow_vs_hmc"] = smp.ess * rate / hmc["independent_per_s"]
    print(f"flow (ESS/N × configs/s) / HMC independent configs/s = {report['flow_vs_hmc']:.2f}")
    save()
    print(f"report: {out / 'gpu_check.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Training cost and solver honesty: float32 vs float64, kinetic regulariser vs solver choice.

IR-matching L = 8 (two cases L = 16) from 4 at κ = 0.25, λ = 0.01 (k = 3, D = 10, batch 64)
for a fixed step budget per case (L = 16: a third of it). Columns: seconds per optimiser
step, the largest solver gap seen (max |Δ log q| vs 2× solver steps, every 10 steps), the
fresh-proposal ESS/N at the end
and why the run stopped ("gap@N": the monitor raised SolverGapError at step N).

    .venv/bin/python bench/training.py --quick     # 120 steps per case (~10 min)
    .venv/bin/python bench/training.py             # 200 steps per case
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.flows.gap import SolverGapError
from core.physics.training.api import train


@dataclass(frozen=True)
class Case:
    name: str
    dtype: str
    solver: str
    solver_steps: int
    kinetic: float
    L: int = 8


CASES = [
    Case("default: f32 RK4-8 λ_K=0.05", "float32", "rk4", 8, 0.05),
    Case("f64 RK4-8 λ_K=0.05", "float64", "rk4", 8, 0.05),
    Case("f32 RK4-8 no regulariser", "float32", "rk4", 8, 0.0),
    Case("f32 RK4-16 no regulariser", "float32", "rk4", 16, 0.0),
    Case("f64 dopri5 (rtol 1e-7) no reg.", "float64", "dopri5", 8, 0.0),
    Case("L=16 default f32", "float32", "rk4", 8, 0.05, 16),
    Case("L=16 f64", "float64", "rk4", 8, 0.05, 16),
]


def run(case: Case, steps: int, max_minutes: float, seed: int) -> dict[str, object]:
    spec = TrainSpec(method="ir", dim=2, L=case.L, kappa=0.25, lam=0.01, steps=steps, seed=seed,
                     dtype=case.dtype, solver=case.solver,  # type: ignore[arg-type]
                     solver_steps=case.solver_steps, max_minutes=max_minutes,
                     kinetic_weight=case.kinetic, eval_samples=2048)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        try:
            res = train(train_plan(spec), workdir=Path(tmp))
            curve = json.loads((res.model_dir / "metrics.json").read_text())["curve"]
            ess, stopped = res.ess, res.stopped
        except SolverGapError:
            curve = json.loads((Path(tmp) / "curve.json").read_text())
            ess, stopped = float("nan"), f"gap@{len(curve)}"
        seconds = time.perf_counter() - t0
    gaps = [r["gap_log_q"] for r in curve if r["gap_log_q"] is not None]
    wall = curve[-1]["wall"] if curve else seconds
    return {"s_step": wall / max(len(curve), 1), "gap": max(gaps) if gaps else float("nan"),
            "ess": ess, "stopped": stopped, "steps": len(curve)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = 120 if args.quick else 300
    print(f"IR L=8 from 4, κ=0.25, λ=0.01, k=3, D=10, batch 64, {steps} steps "
          f"(L=16: {steps // 3}), 1 thread")
    print(f"{'case':<32} {'s/step':>7} {'max gap':>9} {'ESS/N':>6} {'steps':>5}  stopped")
    for case in CASES:
        n = steps if case.L == 8 else steps // 3
        r = run(case, n, 4.0 if args.quick else 15.0, args.seed)
        print(f"{case.name:<32} {r['s_step']:>7.3f} {r['gap']:>9.2e} {r['ess']:>6.3f} "
              f"{r['steps']:>5}  {r['stopped']}", flush=True)


if __name__ == "__main__":
    main()

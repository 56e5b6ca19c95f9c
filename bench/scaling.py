"""ESS/N against wall-clock as the lattice grows: old default, new default and ablations.

Every case is what `srflow train` runs (core.jobs.train_job.run_train_job: grow or not, as the
spec says) with a wall-clock budget (`max_minutes`); the figure reported is the fresh ESS/N
on ≥ 4096 proposals measured after training, and the wall-clock column is the whole job:
Langevin thermalisation, every stage, the final evaluation. Cases run in separate
processes, ``--jobs`` at a time, one torch thread each (the CI machine has 2 cores: with
--jobs 2 the two runs share the machine's memory bandwidth, as they would in service).

    .venv/bin/python bench/scaling.py --quick   # L = 8, 16 (κ = 0.25), 16 (κ = 0.27): ~10 min
    .venv/bin/python bench/scaling.py           # the issue's budgets, 15/30/15/20/60 min per
                                                # point and case: ≈ 6 h on 2 cores
    .venv/bin/python bench/scaling.py --cases new,old --points 16 --minutes 5

``--clock cpu`` counts every budget in CPU seconds of the one-thread training process
instead of wall-clock seconds (the child's ``time.perf_counter`` reads
``time.process_time``): on an idle core the two agree, and on a shared machine the CPU
clock keeps a run's budget its own while other work takes turns on the cores (memory
bandwidth and caches are still shared: the load column says how busy the machine was).
The table prints both the CPU seconds and the wall-clock seconds of every run.

Writes runs/scaling/results.json (one row per case, appended as they finish), a table on
stdout (with the 1-minute load average at start → end of each run: other work on the cores
shows there), and runs/scaling/scaling.png (training ESS/N against wall-clock per point,
the fresh figure as a marker at the job's total time). Each trained model is kept under
runs/scaling/models/ for `bench/flow.py --model`. ``--replot A.json B.json --out DIR``
merges earlier runs into one table and PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Point:
    name: str
    L: int
    kappa: float
    lam: float
    minutes: float  # the full-mode budget
    target: float


POINTS = {
    "8c": Point("L=8 κ=0.28848 λ=0.5 (ξ≈L/4)", 8, 0.28848, 0.5, 20, 0.9),
    "16": Point("L=16 κ=0.25", 16, 0.25, 0.01, 15, 0.85),
    "32": Point("L=32 κ=0.25", 32, 0.25, 0.01, 30, 0.7),
    "64": Point("L=64 κ=0.25", 64, 0.25, 0.01, 60, 0.45),
    "32c": Point("L=32 κ=0.2585 (ξ≈L/4)", 32, 0.2585, 0.01, 30, 0.85),
    "64c": Point("L=64 κ=0.260 (ξ≈L/4)", 64, 0.260, 0.01, 120, 0.6),
    "128": Point("L=128 κ=0.25", 128, 0.25, 0.01, 150, 0.5),
    "16b": Point("L=16 κ=0.27 (broken)", 16, 0.27, 0.01, 15, 0.5),
    "8": Point("L=8 κ=0.25", 8, 0.25, 0.01, 5, 0.7),
}

# spec overrides per case; "new" is TrainSpec's defaults (what `srflow train` does)
CASES: dict[str, dict[str, Any]] = {
    # the original default: 4×4 coarse, k = 3, every level at once
    "old": {"grow": False, "coarse_L": 4, "kernel_size": 3},
    "new": {},
    "k5-c8": {"coarse_L": 8},
    "grow-frozen": {"lower_lr_factor": 0.0},
    "grow-full-lr": {"lower_lr_factor": 1.0},
    "no-grow": {"grow": False},
    "coarse8": {"coarse_L": 8},
    "coarse16": {"coarse_L": 16},
    "hollow": {"field": "hollow"},
    "conditional": {"base": "conditional"},
    "batch32": {"batch": 32},
    "kernel5": {"kernel_size": 5},
    "rk4-4": {"solver_steps": 4},
    "D4": {"n_time": 4},
    "kinetic0.01": {"kinetic_weight": 0.01},
    "combo": {"batch": 32, "n_time": 4, "base": "conditional"},
    "combo-c8": {"batch": 32, "n_time": 4, "base": "conditional", "coarse_L": 8},
    "k5-combo": {"kernel_size": 5, "batch": 32, "n_time": 4, "base": "conditional"},
    "k3": {"kernel_size": 3},
    "stage-lr0.3": {"stage_lr_factor": 0.3},  # the default since it was measured
    "stage-lr1": {"stage_lr_factor": 1.0},  # before: every stage restarts at lr 10⁻²
    "decay0.999": {"lr_decay": 0.999},  # lr 10⁻²·0.999^step: ≈ 4·10⁻³ after 1000 steps
    "kernel7": {"kernel_size": 7},
    "hold-kappa": {"stage_coupling_lr_factor": 0.0},  # κ_L as the first stage learned it
    "learn-lam": {"learn_lam": True},  # IR: λ_L learned beside κ_L
}


def run_case(point: Point, case: str, minutes: float, seed: int,
             models: Path, clock: str = "wall") -> dict[str, Any]:
    """One training job in a fresh process (one thread); returns its row. The trained model
    is kept under ``models/<L>-<κ>-<case>`` (bench/flow.py --model measures its throughput)."""
    spec = {"method": "ir", "dim": 2, "L": point.L, "kappa": point.kappa, "lam": point.lam,
            "steps": 100_000, "max_minutes": minutes, "seed": seed, **CASES[case]}
    if spec.get("coarse_L", 4) >= point.L:
        return {"point": point.name, "case": case, "skipped": "coarse_L ≥ L"}
    code = (
        "import json, sys, time, torch; torch.set_num_threads(1)\n"
        + ("time.perf_counter = time.process_time  # budgets in CPU seconds\n"
           if clock == "cpu" else "")
        + "cpu0 = time.process_time()\n"
        "from pathlib import Path\n"
        "from core.jobs.specs import TrainSpec\n"
        "from core.jobs.train_job import run_train_job\n"
        "spec = TrainSpec(**json.loads(sys.argv[1])); t0 = time.perf_counter()\n"
        "res = run_train_job(spec, workdir=Path(sys.argv[2]))\n"
        "wall = time.perf_counter() - t0\n"
        "m = json.loads((res.model_dir / 'metrics.json').read_text())\n"
        "curve = [(r['wall'], r['ess']) for r in m.get('grow_curve') or m['curve']]\n"
        "print(json.dumps({'summary': res.summary, 'wall': wall, 'curve': curve,\n"
        "                  'cpu': time.process_time() - cpu0,\n"
        "                  'whole_curve': bool(m.get('grow_curve')) or not m.get('grow'),\n"
        "                  'grow': m.get('grow'), 'eval_samples': m.get('eval_samples')}))\n"
        "import shutil; keep = Path(sys.argv[3]); shutil.rmtree(keep, ignore_errors=True)\n"
        "shutil.copytree(res.model_dir, keep)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        keep = models / f"L{point.L}-k{point.kappa}-{case}"
        out = subprocess.run([sys.executable, "-c", code, json.dumps(spec), tmp, str(keep)],
                             env=env,
                             capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
    if out.returncode != 0:
        return {"point": point.name, "case": case, "error": out.stderr.strip()[-400:],
                "wall": wall}
    data = json.loads(out.stdout.strip().splitlines()[-1])
    s = data["summary"]
    return {"point": point.name, "L": point.L, "case": case, "spec": CASES[case],
            "minutes": minutes, "wall": wall, "ess": s["ess"], "steps": s["steps"],
            "clock": clock, "cpu": data["cpu"],
            "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
            "coarse_kappa": (s["couplings"].get("coarse") or {}).get("kappa"),
            "gap": s["solver_gap"], "stopped": s["stopped"], "target": point.target,
            "eval_samples": data["eval_samples"], "grow": data["grow"], "curve": data["curve"],
            "whole_curve": data["whole_curve"]}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| point | case | budget (min) | clock | CPU s incl. therm + eval | wall s | steps "
             "| fresh ESS/N | target | κ_L | gap (nats) | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "ess" not in r:
            why = r.get("error") or r.get("skipped")
            lines.append(f"| {r['point']} | {r['case']} | | | | | | {why} | | | | |")
            continue
        ck = "" if r["coarse_kappa"] is None else f"{r['coarse_kappa']:.3f}"
        cpu = f"{r['cpu']:.0f}" if "cpu" in r else ""
        lines.append(f"| {r['point']} | {r['case']} | {r['minutes']:g} | "
                     f"{r.get('clock', 'wall')} | {cpu} | {r['wall']:.0f} | "
                     f"{r['steps']} | {r['ess']:.3f} | {r['target']} | {ck} | {r['gap']:.1e} | "
                     f"{r['load'][0]}→{r['load'][1]} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted({r["point"] for r in rows if "ess" in r})
    if not points:
        return
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 3.6), squeeze=False)
    for ax, name in zip(axes[0], points, strict=True):
        for r in (r for r in rows if r.get("point") == name and "ess" in r):
            # a grown stack's curve is its last stage's: shift it by the earlier stages
            stages = [] if r.get("whole_curve") else (r.get("grow") or [])[:-1]
            offset = sum(g["seconds"] for g in stages)
            wall = [offset + c[0] for c in r["curve"]]
            ess = [c[1] for c in r["curve"]]
            k = max(1, len(ess) // 40)
            smooth = [sum(ess[max(0, i - k):i + 1]) / len(ess[max(0, i - k):i + 1])
                      for i in range(len(ess))]
            line, = ax.plot(wall, smooth, lw=1, label=r["case"])
            end = r["cpu"] if r.get("clock") == "cpu" else r["wall"]
            ax.plot([end], [r["ess"]], "o", color=line.get_color())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("seconds on the budget's clock")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6, loc="lower right")  # cases differ per point
    axes[0][0].set_ylabel("ESS/N (line: training batch, last stage;\ndot: fresh ≥ 4096)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="≤ 10 min: L = 8, 16 at 2-min budgets")
    ap.add_argument("--points", default=None, help="comma list of " + ",".join(POINTS))
    ap.add_argument("--cases", default=None, help="comma list of " + ",".join(CASES))
    ap.add_argument("--minutes", type=float, default=None, help="budget per run (all points)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="what the budgets count: wall-clock, or CPU seconds of the "
                    "one-thread process (a shared machine)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "scaling")
    ap.add_argument("--replot", type=Path, nargs="*", default=None,
                    help="only merge these results.json files into one table and PNG (--out)")
    args = ap.parse_args()
    if args.replot is not None:
        merged = [row for f in args.replot for row in json.loads(f.read_text())]
        print(table(merged))
        plot(merged, args.out / "scaling.png")
        return
    if args.quick:
        points = args.points or "8,16,16b"
        cases = args.cases or "old,new"
        minutes = args.minutes or 2.0
    else:
        points = args.points or "16,32,16b,8c,64"
        cases = args.cases or ",".join(CASES)
        minutes = args.minutes
    todo = [(POINTS[p], c) for p in points.split(",") for c in cases.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.json"
    rows: list[dict[str, Any]] = []
    print(f"{len(todo)} runs, {args.jobs} at a time", file=sys.stderr)

    def one(item: tuple[Point, str]) -> dict[str, Any]:
        point, case = item
        row = run_case(point, case, minutes or point.minutes, args.seed, args.out / "models",
                       args.clock)
        print(f"  {point.name} {case}: ESS/N {row.get('ess', row.get('error'))}", file=sys.stderr)
        return row

    with ThreadPoolExecutor(args.jobs) as pool:  # each row saved as it finishes
        for future in as_completed([pool.submit(one, item) for item in todo]):
            rows.append(future.result())
            results.write_text(json.dumps(rows, indent=1))
    print(table(rows))
    plot(rows, args.out / "scaling.png")
    print(f"\nplot: {args.out / 'scaling.png'}; rows: {results}")


if __name__ == "__main__":
    main()

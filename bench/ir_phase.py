"""Paper fig. 4 analogue: IR-matching ESS/N and learned κ_L against the fine κ at λ = 0.01.

For each fine κ (symmetric → broken) and fine L (from coarse L = 4) an IR flow is trained
with the defaults of core.physics.training.api for a fixed step budget; ESS/N is measured on fresh
proposals (coarse fields from exact HMC at the learned κ_L). The baseline full-lattice CNF
(F = 30, lr 5e-3) gets the same wall-clock budget as the IR flow at the same (κ, L); when
the solver-gap monitor stops it, ESS/N is NaN and "steps base" is minus the step it stopped at.
Prints a table and writes a PNG (ESS/N vs κ; κ_L vs κ with the diagonal κ_L = κ).

    .venv/bin/python bench/ir_phase.py --quick        # L = 8, 5 couplings, 100 steps (~6 min)
    .venv/bin/python bench/ir_phase.py                # L = 8, 16, 8 couplings, 300 steps
    .venv/bin/python bench/ir_phase.py --device cuda --sizes 8 16 32
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.flows.gap import SolverGapError
from core.physics.training.api import train

LAM = 0.01


@dataclass(frozen=True)
class Row:
    L: int
    kappa: float
    ess_ir: float
    kappa_coarse: float
    seconds_ir: float
    steps_ir: int
    ess_base: float
    steps_base: int


def run(L: int, kappa: float, steps: int, device: str, eval_samples: int, seed: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        ir = train(train_plan(TrainSpec(method="ir", dim=2, L=L, kappa=kappa, lam=LAM,
                                        steps=steps, device=device, seed=seed,
                                        eval_samples=eval_samples)),
                   workdir=Path(tmp) / "ir")
        try:
            base = train(train_plan(TrainSpec(method="baseline", dim=2, L=L, kappa=kappa,
                                              lam=LAM, steps=100 * steps,
                                              max_minutes=ir.seconds / 60, device=device,
                                              seed=seed, eval_samples=eval_samples)),
                         workdir=Path(tmp) / "base")
            ess_base, steps_base = base.ess, base.steps
        except SolverGapError:  # the monitor stopped it: no honest ESS/N to report
            curve = json.loads((Path(tmp) / "base" / "curve.json").read_text())
            ess_base, steps_base = math.nan, -len(curve)
    coarse = ir.couplings["coarse"]
    assert coarse is not None
    return Row(L, kappa, ir.ess, coarse["kappa"], ir.seconds, ir.steps, ess_base, steps_base)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for L in sorted({r.L for r in rows}):
        sel = [r for r in rows if r.L == L]
        k = [r.kappa for r in sel]
        a.plot(k, [r.ess_ir for r in sel], "o-", label=f"IR L={L}")
        a.plot(k, [r.ess_base for r in sel], "x--", label=f"baseline L={L}")
        b.plot([r.kappa_coarse for r in sel], k, "o-", label=f"L={L}")
    ks = [r.kappa for r in rows]
    b.plot([min(ks), max(ks)], [min(ks), max(ks)], "k:", label="κ_L = κ")
    a.set(xlabel="fine κ", ylabel="ESS/N (fresh proposals)", ylim=(0, 1))
    b.set(xlabel="learned coarse κ_L", ylabel="fine κ")
    a.legend()
    b.legend()
    fig.suptitle(f"IR-matching from L=4, λ={LAM}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--kappas", type=float, nargs="*", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/ir_phase.png"))
    args = ap.parse_args()
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    sizes = args.sizes or ([8] if args.quick else [8, 16])
    kappas = args.kappas or ([0.2, 0.24, 0.26, 0.28, 0.3] if args.quick
              else [0.18, 0.2, 0.22, 0.24, 0.26, 0.27, 0.28, 0.3])
    steps = args.steps or (100 if args.quick else 300)
    eval_samples = 2048 if args.quick else 4096
    print(f"IR-matching from L=4, λ={LAM}, {steps} steps, ESS/N on {eval_samples} fresh "
          f"proposals; baseline CNF with the IR run's wall time ({args.device})")
    print(f"{'L':>3} {'κ':>6} {'ESS IR':>7} {'κ_L':>7} {'κ_L−κ':>7} {'s IR':>6} "
          f"{'ESS base':>8} {'steps base':>10}")
    rows = []
    for L in sizes:
        for kappa in kappas:
            r = run(L, kappa, steps, args.device, eval_samples, args.seed)
            rows.append(r)
            print(f"{r.L:>3} {r.kappa:>6.3f} {r.ess_ir:>7.3f} {r.kappa_coarse:>7.4f} "
                  f"{r.kappa_coarse - r.kappa:>+7.4f} {r.seconds_ir:>6.1f} {r.ess_base:>8.3f} "
                  f"{r.steps_base:>10d}", flush=True)
    plot(rows, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Paper figs. 8-9 analogue: d = 1 UV-matching from L = 8 (κ_L = 0.1, λ = 0.01) iterated to
finer lattices, ESS/N per level with and without retraining.

One level is UV-trained L = 8 → 16 (fine κ learnable, core.physics.training.api defaults). It is
then iterated (core.physics.training.uv_iterate): after each doubling the fine κ is the
ESS-maximising one; with N_RT > 0 the new level is retrained at lr/5 with early stopping
and κ is scanned again. Prints a table, writes a PNG (ESS/N against L for each N_RT).

    .venv/bin/python bench/uv_1d.py --quick     # to L = 128, N_RT ∈ {0, 50} (~1 min)
    .venv/bin/python bench/uv_1d.py             # to L = 512, N_RT ∈ {0, 10, 50, 100}
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.io.flow_files import load_flow
from core.physics.lattice.couplings import Couplings
from core.physics.training.api import train
from core.physics.training.uv_iterate import IterateConfig, LevelResult, iterate_uv


def plot(results: dict[int, list[LevelResult]], first: tuple[int, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for n_rt, levels in results.items():
        Ls = [first[0], *[r.L for r in levels]]
        a.plot(Ls, [first[1], *[r.ess for r in levels]], "o-", label=f"N_RT={n_rt}")
        b.plot(Ls[1:], [r.kappa for r in levels], "o-", label=f"N_RT={n_rt}")
    a.set(xscale="log", xlabel="fine L", ylabel="ESS/N at the ESS-maximising κ", ylim=(0, 1))
    b.set(xscale="log", xlabel="fine L", ylabel="ESS-maximising fine κ")
    for ax in (a, b):
        ax.set_xticks(Ls, [str(x) for x in Ls])
        ax.minorticks_off()
        ax.legend()
    fig.suptitle("d=1 UV-matching from L=8, κ_L=0.1, λ=0.01")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--target", type=int, default=None)
    ap.add_argument("--steps", type=int, default=200, help="first-level UV training steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/uv_1d.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    target = args.target or (128 if args.quick else 512)
    n_rts = [0, 50] if args.quick else [0, 10, 50, 100]
    n_eval = 2048 if args.quick else 4096
    with tempfile.TemporaryDirectory() as tmp:
        res = train(train_plan(TrainSpec(method="uv", dim=1, L=16, coarse_L=8, kappa=0.1,
                                         lam=0.01, steps=args.steps, seed=args.seed)),
                    workdir=Path(tmp))
        loaded = {n: load_flow(res.model_dir) for n in n_rts}
    c = loaded[n_rts[0]].couplings
    coarse = Couplings(c["coarse_kappa"], c["coarse_lam"])
    fine = Couplings(c["fine_kappa"], c["fine_lam"])
    print(f"level 1: L=16 trained {res.steps} steps in {res.seconds:.1f} s: ESS/N {res.ess:.3f} "
          f"(fresh), learned κ = {fine.kappa:.4f}")
    results: dict[int, list[LevelResult]] = {}
    for n_rt in n_rts:
        cfg = IterateConfig(n_rt=n_rt, n_eval=n_eval)
        results[n_rt] = iterate_uv(loaded[n_rt].flow, coarse, fine, target, cfg,
                                   seed=args.seed).levels
    print(f"\n{'L':>5} " + " ".join(f"{'ESS N_RT=' + str(n):>13} {'κ':>7} {'steps':>5}"
                                     for n in n_rts))
    for i, L in enumerate(r.L for r in results[n_rts[0]]):
        cells = [f"{results[n][i].ess:>13.3f} {results[n][i].kappa:>7.4f} "
                 f"{results[n][i].steps:>5d}" for n in n_rts]
        print(f"{L:>5} " + " ".join(cells))
    total = {n: sum(r.seconds for r in results[n]) for n in n_rts}
    print("seconds per iteration: " + ", ".join(f"N_RT={n}: {s:.1f}" for n, s in total.items()))
    plot(results, (16, res.ess), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Where one IR training step's time goes, at L = 16 and 32 (one thread, float32).

Phases (best of ``--repeats``): the coarse draw (500 Langevin steps with the graph kept),
the flow forward (T_θ with log q and the kinetic term) and its backward pass together with
the Langevin graph's, the log Z reweighting term, the solver-gap monitor (16
configurations, every 10th step), and the final evaluation (4096 fresh proposals from
exact coarse HMC) once per run.

    .venv/bin/python bench/profile_step.py            # L = 16, 32 with the defaults
    .venv/bin/python bench/profile_step.py --L 16 --batch 32 --n-time 4
    .venv/bin/python bench/profile_step.py --compare-contract --L 16 --L 32 --L 64

``--compare-contract`` times one optimiser step with the field's one-gather contraction
against the plain reference (core.physics.flows.vector_field.roll_contract, 2-4 rolls per offset)
side by side, alternating, and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.flows.gap import measure_gap
from core.physics.flows.vector_field import LocalVectorField, roll_contract
from core.physics.training.api import GENERATORS, TrainOptions, build_problem, evaluate
from core.physics.training.plan import TrainPlan


def _best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _problem(L: int, batch: int, n_time: int) -> tuple[TrainPlan, Any, dict[str, Any]]:
    """(plan, thermalised IR problem, generators) at κ = 0.25, λ = 0.01."""
    plan = train_plan(TrainSpec(method="ir", dim=2, L=L, kappa=0.25, lam=0.01, batch=batch,
                                n_time=n_time, langevin_therm=2000))
    gens = {k: torch.Generator().manual_seed(i) for i, k in enumerate(GENERATORS)}
    problem, _ = build_problem(plan, TrainOptions(), gens)
    src: Any = problem.source
    src.draw()  # thermalise outside the timings
    return plan, problem, gens


def _loss(problem: Any) -> Any:
    """The training loss of one step: draw, push, −mean log w + λ_K · kinetic term."""
    prop = problem.push(problem.source.draw())
    assert prop.kinetic is not None
    return -problem.log_w(prop).mean() + problem.kinetic_weight * prop.kinetic.double().mean()


def profile(L: int, batch: int, n_time: int, repeats: int, evaluate_n: int) -> dict[str, float]:
    plan, problem, gens = _problem(L, batch, n_time)
    src: Any = problem.source
    out: dict[str, float] = {}
    out["draw (500 Langevin, graph kept)"] = _best(src.draw, repeats)

    def forward() -> Any:
        return _loss(problem)

    def step() -> None:
        forward().backward()

    full = _best(step, repeats)
    fwd = _best(forward, repeats)
    out["flow forward (+ draw)"] = fwd
    out["backward (flow + Langevin graph)"] = full - fwd
    out["log Z term"] = _best(src.logz_terms, repeats)
    phi = src.draw().detach()
    out["gap monitor (16 configs; every 10th step)"] = _best(
        lambda: measure_gap(problem.flow, phi[:16], gens["gap"]), repeats
    )
    out["one optimiser step (draw + fwd + bwd)"] = full
    t0 = time.perf_counter()
    evaluate(problem, plan, evaluate_n, gens["init"])
    out[f"final evaluation ({evaluate_n} fresh, once)"] = time.perf_counter() - t0
    return out


def compare_contract(L: int, batch: int, n_time: int, repeats: int) -> dict[str, float]:
    """Seconds per optimiser step (best of ``repeats``, alternating): gather vs rolls."""
    _, problem, _ = _problem(L, batch, n_time)
    gather = LocalVectorField._sum_taps

    def rolls(self: LocalVectorField, u: torch.Tensor) -> torch.Tensor:
        return roll_contract(u, self.offsets, self.offset_class)

    best = {"gather": float("inf"), "rolls": float("inf")}
    try:
        for _ in range(repeats):
            for name, impl in (("gather", gather), ("rolls", rolls)):
                LocalVectorField._sum_taps = impl  # type: ignore[method-assign]
                best[name] = min(best[name], _best(lambda: _loss(problem).backward(), 1))
    finally:
        LocalVectorField._sum_taps = gather  # type: ignore[method-assign]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, action="append", default=None)
    ap.add_argument("--batch", type=int, default=None, help="default: TrainSpec's")
    ap.add_argument("--n-time", type=int, default=None, help="default: TrainSpec's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eval", type=int, default=4096)
    ap.add_argument(
        "--compare-contract",
        action="store_true",
        help="one step with the gather contraction vs the roll reference",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    defaults = TrainSpec(L=8, kappa=0.25, lam=0.01)
    batch = args.batch or defaults.batch
    n_time = args.n_time or defaults.n_time
    if args.compare_contract:
        for L in args.L or [16, 32]:
            best = compare_contract(L, batch, n_time, args.repeats)
            print(
                f"L = {L}: one step gather {best['gather']:.3f} s, rolls {best['rolls']:.3f} s, "
                f"rolls/gather {best['rolls'] / best['gather']:.2f} "
                f"(load {os.getloadavg()[0]:.1f})"
            )
        return
    for L in args.L or [16, 32]:
        res = profile(L, batch, n_time, args.repeats, args.eval)
        step = res["one optimiser step (draw + fwd + bwd)"]
        print(
            f"\nL = {L}, batch {batch}, D = {n_time}, float32, 1 thread, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        for name, sec in res.items():
            share = f"{100 * sec / step:5.0f} %" if "once" not in name else ""
            print(f"  {name:<48} {sec * 1000:9.1f} ms {share}")


if __name__ == "__main__":
    main()

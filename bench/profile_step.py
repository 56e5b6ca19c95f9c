"""Where one IR training step's time goes, at L = 16 and 32 (one thread, float32).

Phases (best of ``--repeats``): the coarse draw (500 Langevin steps with the graph kept),
the flow forward (T_θ with log q and the kinetic term) and its backward pass together with
the Langevin graph's, the log Z reweighting term, the solver-gap monitor (16
configurations, every 10th step), and the final evaluation (4096 fresh proposals from
exact coarse HMC) once per run.

    .venv/bin/python bench/profile_step.py            # L = 16, 32 with the defaults
    .venv/bin/python bench/profile_step.py --L 16 --batch 32 --n-time 4
    .venv/bin/python bench/profile_step.py --compare-contract --L 16 --L 32 --L 64

``--clock cpu`` counts CPU seconds of the one-thread process instead of wall-clock ones
(on a shared machine). ``--compare-contract`` times one optimiser step and one no-grad
push of a sampling batch with three evaluations of eq. (23)'s tap sum side by side,
alternating: the field's block convolution (core.physics.flows.block_conv), the
one-gather contraction it replaced (an (B, S, V) array of taps read by index_select,
kept here as the reference implementation) and the plain reference
(core.physics.flows.vector_field.roll_contract, 2-4 rolls per offset); it prints the
ratios to the convolution.
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
from core.physics.flows.vector_field import LocalVectorField, VectorField, roll_contract
from core.physics.training.api import GENERATORS, TrainOptions, build_problem, evaluate
from core.physics.training.plan import TrainPlan

CLOCK: list[Callable[[], float]] = [time.perf_counter]  # --clock cpu: time.process_time


def _best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = CLOCK[0]()
        fn()
        times.append(CLOCK[0]() - t0)
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


_GATHER_INDEX: dict[tuple[int, tuple[int, ...]], torch.Tensor] = {}


def gather_contract(field: LocalVectorField, coeff: torch.Tensor,
                    features: torch.Tensor) -> torch.Tensor:
    """The one-gather contraction: u_c = Σ_f a_cf H_f, then the S·V taps u_{c(s)}(x + δ(s, x))
    read by one index_select into a (B, S, V) array and summed over s."""
    u = torch.einsum("bf...,cf->bc...", features, coeff)
    lattice = tuple(u.shape[2:])
    key = (id(field), lattice)
    if key not in _GATHER_INDEX:
        volume = 1
        for n in lattice:
            volume *= n
        site = torch.arange(volume).reshape(1, *lattice)
        flat = u.new_zeros(0)
        _GATHER_INDEX[key] = torch.cat([
            c * volume
            + roll_contract(site.unsqueeze(1).to(flat.dtype), [s], [0]).long().reshape(-1)
            for s, c in zip(field.offsets, field.offset_class, strict=True)])
    index = _GATHER_INDEX[key].to(u.device)
    taps = u.reshape(u.shape[0], -1).index_select(1, index)
    return taps.reshape(u.shape[0], len(field.offsets), -1).sum(dim=1).reshape(u.shape[0],
                                                                                 *lattice)


CONTRACTIONS: dict[str, Callable[..., torch.Tensor] | None] = {
    "conv": None,  # the field as it is: block convolution on the block-layout ODE state
    "gather": gather_contract,
    "rolls": lambda self, coeff, features: roll_contract(
        torch.einsum("bf...,cf->bc...", features, coeff), self.offsets, self.offset_class),
}
STATE_METHODS = ("_contract", "to_state", "from_state", "state_velocity_and_divergence")


def use_contraction(name: str) -> None:
    """Make every LocalVectorField evaluate with contraction ``name``; the references run
    on the lattice layout (VectorField's state methods), the convolution on its own."""
    impl = CONTRACTIONS[name]
    for attr in STATE_METHODS[1:]:
        setattr(LocalVectorField, attr, OWN[attr] if impl is None else getattr(VectorField, attr))
    LocalVectorField._contract = OWN["_contract"] if impl is None else impl  # type: ignore


OWN = {attr: vars(LocalVectorField)[attr] for attr in STATE_METHODS}


def compare_contract(L: int, batch: int, n_time: int, repeats: int,
                     push_batch: int) -> dict[str, dict[str, float]]:
    """Seconds per optimiser step and per no-grad push of ``push_batch`` coarse fields
    (best of ``repeats``, alternating) for each contraction."""
    _, problem, _ = _problem(L, batch, n_time)
    drawn = problem.source.draw().detach()
    phi = drawn.repeat(-(-push_batch // drawn.shape[0]), *([1] * (drawn.ndim - 1)))[:push_batch]
    gen = torch.Generator().manual_seed(0)
    flow: Any = problem.flow
    best: dict[str, dict[str, float]] = {k: {"step": float("inf"), "push": float("inf")}
                                         for k in CONTRACTIONS}

    def push() -> None:  # what sampling does per chunk: T_θ with log q, no kinetic term
        with torch.no_grad():
            flow(phi, gen)

    try:
        for _ in range(repeats):
            for name in CONTRACTIONS:
                use_contraction(name)
                best[name]["step"] = min(best[name]["step"],
                                         _best(lambda: _loss(problem).backward(), 1))
                best[name]["push"] = min(best[name]["push"], _best(push, 1))
    finally:
        use_contraction("conv")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--L", type=int, action="append", default=None)
    ap.add_argument("--batch", type=int, default=None, help="default: TrainSpec's")
    ap.add_argument("--n-time", type=int, default=None, help="default: TrainSpec's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eval", type=int, default=4096)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: CPU seconds of this one-thread process (a shared machine)")
    ap.add_argument("--push-batch", type=int, default=64,
                    help="--compare-contract: coarse fields per no-grad push")
    ap.add_argument(
        "--compare-contract",
        action="store_true",
        help="one step with the gather contraction vs the roll reference",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    defaults = TrainSpec(L=8, kappa=0.25, lam=0.01)
    batch = args.batch or defaults.batch
    n_time = args.n_time or defaults.n_time
    if args.compare_contract:
        for L in args.L or [16, 32]:
            best = compare_contract(L, batch, n_time, args.repeats, args.push_batch)
            conv = best["conv"]
            for what in ("step", "push"):
                label = (f"one step (batch {batch})" if what == "step"
                         else f"push of {args.push_batch}")
                ratios = ", ".join(f"{k} {v[what]:.3f} s ({v[what] / conv[what]:.2f}×)"
                                   for k, v in best.items())
                print(f"L = {L}, {label}: {ratios} (load {os.getloadavg()[0]:.1f})")
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

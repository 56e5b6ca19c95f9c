"""Flow throughput, peak memory and parameter counts: super-resolving stacks vs the baseline.

    .venv/bin/python bench/flow.py --quick             # L ∈ {8, 16}, batch 16 (CPU, ~1 min)
    .venv/bin/python bench/flow.py --device cuda       # L ∈ {8, 16, 32, 64}, batch 128
    .venv/bin/python bench/flow.py --model A --model B  # trained models: exact sampling rate
                                                       # × fresh ESS/N, side by side

``--model``: each trained model samples ``--n-samples`` exact configurations with
core.physics.exact.sampler.sample (coarse HMC, T_θ with log q, independence Metropolis; float32
flow, one thread) in a fresh process; printed: configs/s, the ESS/N of those proposals
and their product — effectively independent proposals per second, the figure a change of
default must not lower.

Forward pass = sample (coarse batch given, noise drawn) + exact log-density, no gradients,
default solver (RK4, 8 steps), paper hyperparameters: stacks from coarse_L = 4 with
F = 11, D = 10, F' = 20, D' = 20 and kernel 2 (IR) or 3 (UV); baseline F = 30, D = 10,
F' = 20, D' = 20. Peak memory: CUDA max_memory_allocated, or on CPU the process's peak
RSS (VmHWM) minus the RSS after building the model, each case in a fresh subprocess so
no memory pooled by an earlier case hides the cost.
Parameter counts are printed for every L, with the baseline/IR ratio (the paper quotes
≈2× at 32×32 and ≈5× at 64×64 for its models).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.physics.flows.config import FlowConfig, count_learnable
from core.physics.flows.rg_flow import build_flow


@dataclass(frozen=True)
class Case:
    name: str
    L: int
    config: FlowConfig


def _config(kind: str, L: int, kernel: int | None, dtype: str) -> FlowConfig:
    theory = dict(kappa=0.25, lam=0.01)
    if kind == "baseline":
        return FlowConfig(
            kind="baseline",
            dim=2,
            fine_L=L,
            levels=0,
            n_freq=30,
            method="baseline",
            dtype=dtype,
            theory=theory,
        )  # type: ignore[arg-type]
    levels = (L // 4).bit_length() - 1
    return FlowConfig(kind="super_resolving", dim=2, coarse_L=4, fine_L=L, levels=levels,
                      kernel_size=kernel, n_freq=11, method="ir" if kernel == 2 else "uv",
                      dtype=dtype, theory=theory)  # type: ignore[arg-type]  # fmt: skip


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def _reset_peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _rss_kib("VmRSS:") * 1024


def _peak(device: torch.device, base: int) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() - base
    return _rss_kib("VmHWM:") * 1024 - base


def run_case(case: Case, batch: int, device: torch.device, repeats: int) -> tuple[float, int]:
    flow = build_flow(case.config).to(device)
    dtype = torch.float32 if case.config.dtype == "float32" else torch.float64
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        if case.config.kind == "baseline":

            def step() -> torch.Tensor:
                return flow(batch, gen).log_q
        else:
            coarse = torch.randn(batch, 4, 4, generator=gen, device=device, dtype=dtype)
            flow.init_sigma(coarse, gen)

            def step() -> torch.Tensor:
                return flow(coarse, gen).log_q_rel

        base = _reset_peak(device)
        step()  # warm-up (inside the peak window: a fresh process has no pooled memory)
        start = time.perf_counter()
        done = 0
        while done < repeats or time.perf_counter() - start < 1.0:  # ≥ 1 s per figure
            out = step()
            done += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    assert bool(torch.isfinite(out).all())
    return batch * done / elapsed, _peak(device, base)


def _sample_rate(model: Path, n: int, device: str, clock: str = "wall") -> dict[str, float]:
    """configs/s and ESS/N of one exact sampling run (float32 flow, as trained); ``clock``
    cpu: seconds of this process's CPU time (a shared machine)."""
    from core.physics.exact.sampler import sample
    from core.physics.io.flow_files import read_config

    now = time.process_time if clock == "cpu" else time.perf_counter
    start = now()
    res = sample(model, n_samples=n, seed=5, chains=32, device=device)
    elapsed = now() - start
    return {"L": read_config(model).fine_L, "rate": n / elapsed, "ess": res.ess}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="L ∈ {8, 16}, batch 16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)  # kind,L,kernel
    parser.add_argument("--model", action="append", default=[], help="trained model dir")
    parser.add_argument("--n-samples", type=int, default=4096)
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="--model: configs per wall or per CPU second of the sampler")
    parser.add_argument("--sample-one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.sample_one is not None:
        torch.set_num_threads(1)
        print(json.dumps(_sample_rate(Path(args.sample_one), args.n_samples, args.device,
                                      args.clock)))
        return
    if args.model:
        print(f"exact sampling with trained models ({args.n_samples} configurations, 1 thread)")
        print(f"{'model':<40} {'L':>4} {'configs/s':>10} {'ESS/N':>7} {'ESS/N×configs/s':>16}")
        for model in args.model:
            cmd = [sys.executable, __file__, "--sample-one", model, "--n-samples",
                   str(args.n_samples), "--device", args.device, "--clock", args.clock]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1])
            print(f"{Path(model).name:<40} {res['L']:>4} {res['rate']:>10.1f} "
                  f"{res['ess']:>7.3f} {res['rate'] * res['ess']:>16.1f}", flush=True)
        return
    if args.case is not None:
        torch.set_num_threads(1)  # one core per figure: the CPU numbers compare like with like
        kind, size, kernel = args.case.split(",")
        config = _config(kind, int(size), int(kernel) if kernel else None, args.dtype)
        rate, peak = run_case(Case(kind, int(size), config), args.batch, device, args.repeats)
        print(json.dumps({"rate": rate, "peak": peak}))
        return
    sizes = [8, 16] if args.quick else [8, 16, 32, 64]
    batch = args.batch or (16 if args.quick else (128 if device.type == "cuda" else 64))
    repeats = args.repeats or 3

    print("parameter counts (learnable scalars, dim 2, from coarse_L = 4)")
    print(f"{'L':>4} {'IR k=2':>9} {'UV k=3':>9} {'baseline':>9} {'base/IR':>8} {'base/UV':>8}")
    for L in [8, 16, 32, 64, 128]:
        ir = count_learnable(_config("sr", L, 2, args.dtype))
        uv = count_learnable(_config("sr", L, 3, args.dtype))
        base = count_learnable(_config("baseline", L, None, args.dtype))
        print(f"{L:>4} {ir:>9} {uv:>9} {base:>9} {base / ir:>8.2f} {base / uv:>8.2f}")

    print(f"\nforward + log q, batch {batch}, {args.dtype}, device {device}, RK4 8 steps, "
          f"≥ {repeats} repeats and ≥ 1 s per figure, 1 CPU thread")  # fmt: skip
    print(f"{'model':<14} {'L':>4} {'configs/s':>11} {'peak MiB':>9}")
    for L in sizes:
        for name, spec in [
            ("IR stack k=2", "sr,2"),
            ("UV stack k=3", "sr,3"),
            ("baseline", "baseline,"),
        ]:
            kind, kernel = spec.split(",")
            cmd = [sys.executable, __file__, "--case", f"{kind},{L},{kernel}", "--device",
                   args.device, "--batch", str(batch), "--dtype", args.dtype,
                   "--repeats", str(repeats)]  # fmt: skip
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            print(f"{name:<14} {L:>4} {res['rate']:>11.1f} {res['peak'] / 2**20:>9.1f}", flush=True)


if __name__ == "__main__":
    main()

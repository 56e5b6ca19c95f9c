"""Flow verbs: ``train``, ``sample`` and ``run`` (train → sample → compare with direct HMC)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli.errors import one_line
from cli.progress import ProgressBar
from core.jobs.specs import HmcSpec, SampleSpec, TrainSpec


def _fail(verb: str, message: str) -> int:
    sys.stderr.write(f"srflow {verb}: error: {message}\n")
    return 2


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", default="ir", help="ir, uv or baseline")
    p.add_argument("--dim", type=int, default=2, help="lattice dimension d")
    p.add_argument("--L", type=int, required=True, help="fine linear size (coarse_L·2^n)")
    p.add_argument("--coarse-L", type=int, default=None,
                   help="coarse linear size (default: 8 for ir in d = 2 at L ≥ 16, else 4)")
    p.add_argument("--kappa", type=float, required=True, help="hopping parameter κ")
    p.add_argument("--lam", type=float, required=True, help="quartic coupling λ ≥ 0")
    p.add_argument("--steps", type=int, default=500,
                   help="optimiser steps (per stage when the stack grows)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-time budget")
    p.add_argument("--target-ess", type=float, default=None, help="stop at this ESS/N")
    p.add_argument("--batch", type=int, default=64, help="configurations per step")
    p.add_argument("--kernel-size", type=int, default=None,
                   help="2 (block) or odd; default: the parent's with --init-from, else 7 "
                   "in d = 2 from an 8x8 coarse lattice (L >= 16), 5 below it, 3 in d = 3")
    p.add_argument("--solver-steps", type=int, default=8, help="fixed RK4 steps of the CNF")
    p.add_argument("--langevin-therm", type=int, default=None,
                   help="IR: coarse Langevin thermalisation steps (default 5·10⁴)")
    p.add_argument("--eval-samples", type=int, default=None,
                   help="fresh proposals for the final ESS/N (default 4096)")
    p.add_argument("--init-from", type=Path, default=None, help="warm start: a model directory")
    p.add_argument("--no-grow", action="store_true",
                   help="train every level at once instead of level by level (L > 2·coarse_L)")
    p.add_argument("--lower-lr-factor", type=float, default=None,
                   help="grow: lr of the inherited levels relative to the new one (0 freezes)")
    p.add_argument("--stage-lr-factor", type=float, default=None,
                   help="grow: lr of the stages after the first, relative (default 0.3)")
    p.add_argument("--stage-coupling-lr-factor", type=float, default=None,
                   help="grow: coupling lr of the stages after the first, relative "
                   "(default 1; 0 holds the first stage's κ_L)")
    p.add_argument("--field", default="paper", help="vector field: paper (eq. 23) or hollow")
    p.add_argument("--base", default="plain", help="block noise: plain or conditional")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _train_spec(args: argparse.Namespace) -> TrainSpec:
    return TrainSpec(
        method=args.method, dim=args.dim, L=args.L, coarse_L=args.coarse_L, kappa=args.kappa,
        lam=args.lam, steps=args.steps, max_minutes=args.max_minutes,
        target_ess=args.target_ess, batch=args.batch, seed=args.seed, device=args.device,
        kernel_size=args.kernel_size, solver_steps=args.solver_steps,
        langevin_therm=args.langevin_therm, eval_samples=args.eval_samples,
        init_from=None if args.init_from is None else str(args.init_from),
        grow=not args.no_grow, lower_lr_factor=args.lower_lr_factor,
        stage_lr_factor=args.stage_lr_factor,
        stage_coupling_lr_factor=args.stage_coupling_lr_factor, field=args.field,
        base=args.base,
    )


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a flow for (d, L, κ, λ)")
    _train_args(p)
    p.add_argument("--out", type=Path, required=True, help="model directory to create")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("sample", help="exact fine ensemble from a trained flow")
    p.add_argument("--model", type=Path, required=True, help="model directory")
    p.add_argument("--n-samples", type=int, required=True)
    p.add_argument("--chains", type=int, default=32, help="coarse sampler chains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--coarse-sampler", default="hmc",
                   help="hmc, or cluster (Wolff flips + Metropolis sweeps on the coarse "
                   "lattice; super-resolving models with an even coarse L)")
    p.add_argument("--out", type=Path, default=None, help="write the ensemble (HDF5)")
    p.add_argument("--no-log-z", dest="log_z", action="store_false",
                   help="skip log Z and f (and the coarse thermodynamic integration)")
    p.add_argument("--reweight-to", action="append", default=[], metavar="KAPPA[,LAM]",
                   help="also log Z at these couplings by reweighting the proposals "
                   "(repeatable; LAM defaults to the model's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("run", help="train, sample and compare with direct HMC, with plots")
    _train_args(p)
    p.add_argument("--n-samples", type=int, default=4000, help="fine configurations to sample")
    p.add_argument("--out", type=Path, default=Path("runs/latest"), help="run directory")
    p.set_defaults(handler=cmd_run)


def _check_new_dir(verb: str, out: Path) -> str | None:
    if out.exists():
        return f"--out={out} already exists: choose a new directory (nothing is overwritten)"
    return None


def _train(args: argparse.Namespace, out: Path, verb: str) -> dict[str, Any] | int:
    """Train into ``out.partial`` (checkpoints there; a rerun resumes), then rename to ``out``."""
    from core.jobs.protocol import JobError
    from core.jobs.run import run_job

    try:
        spec = _train_spec(args)
    except ValidationError as err:
        return _fail(verb, one_line(err))
    work = out.with_name(out.name + ".partial")
    bar = ProgressBar()
    try:
        result = run_job(spec, workdir=work, progress=bar, model_resolver=Path)
    except JobError as err:
        return _fail(verb, str(err))
    except Exception as err:  # a training failure is reported, its checkpoint kept
        return _fail(verb, f"{type(err).__name__}: {err} (checkpoint kept in {work})")
    finally:
        bar.close()
    assert result.model_dir is not None
    out.parent.mkdir(parents=True, exist_ok=True)
    result.model_dir.replace(out)
    shutil.rmtree(work, ignore_errors=True)
    return {**result.summary, "model": str(out)}


def cmd_train(args: argparse.Namespace) -> int:
    if (msg := _check_new_dir("train", args.out)) is not None:
        return _fail("train", msg)
    summary = _train(args, args.out, "train")
    if isinstance(summary, int):
        return summary
    keep = ("model", "method", "theory", "ess", "loss", "couplings", "steps", "seconds")
    if args.json:
        print(json.dumps({k: summary[k] for k in keep}))
    else:
        c = summary["couplings"]
        print(f"trained {summary['method']} flow → {summary['model']}: ESS/N {summary['ess']:.3f} "
              f"(fresh proposals), {summary['steps']} steps, {summary['seconds']:.0f} s")
        print(f"  couplings: coarse {c.get('coarse')}, fine {c.get('fine')}")
    return 0


def _couplings(points: list[str], model: Path) -> list[dict[str, float]]:
    """``KAPPA[,LAM]`` → {kappa, lam}; LAM defaults to the model's fine λ."""
    if not points:
        return []
    lam0 = float(json.loads((model / "config.json").read_text())["theory"]["lam"])
    out = []
    for p in points:
        k, _, lam = p.partition(",")
        out.append({"kappa": float(k), "lam": float(lam) if lam else lam0})
    return out


def _sample(model: Path, n: int, chains: int, seed: int, device: str, verb: str,
            work: Path, coarse_sampler: str = "hmc", log_z: bool = True,
            reweight_to: list[str] | None = None) -> dict[str, Any] | int:
    from core.jobs.protocol import JobError
    from core.jobs.run import run_job

    try:
        spec = SampleSpec(model=str(model), n_samples=n, chains=chains, seed=seed, device=device,
                          coarse_sampler=coarse_sampler,  # type: ignore[arg-type]
                          log_z=log_z, reweight_to=_couplings(reweight_to or [], model))
    except ValidationError as err:
        return _fail(verb, one_line(err))
    except (OSError, KeyError, ValueError) as err:
        return _fail(verb, f"--reweight-to: {err} (use KAPPA or KAPPA,LAM with a model "
                     "directory)")
    bar = ProgressBar()
    try:
        result = run_job(spec, workdir=work, progress=bar)
    except JobError as err:
        return _fail(verb, str(err))
    except (OSError, ValueError) as err:
        return _fail(verb, f"--model={model}: {err}")
    finally:
        bar.close()
    return dict(result.summary)


def cmd_sample(args: argparse.Namespace) -> int:
    from cli.hmc_verbs import move_file, print_observables

    with tempfile.TemporaryDirectory(prefix="srflow-sample-") as tmp:
        summary = _sample(args.model, args.n_samples, args.chains, args.seed, args.device,
                          "sample", Path(tmp), coarse_sampler=args.coarse_sampler,
                          log_z=args.log_z, reweight_to=args.reweight_to)
        if isinstance(summary, int):
            return summary
        if args.out is not None:
            move_file(Path(summary["out"]), args.out)
            summary["out"] = str(args.out)
        else:
            summary["out"] = None
    keep = ("acceptance", "ess", "ode_consistency", "observables", "free_energy", "seconds",
            "out")
    if args.json:
        print(json.dumps({k: summary[k] for k in keep}))
    else:
        print(f"flow + Metropolis: acceptance {summary['acceptance']:.3f}, ESS/N of proposals "
              f"{summary['ess']:.3f}, ODE consistency {summary['ode_consistency']:.2g} nats")
        c = summary["coarse"]
        if c["sampler"] != "none":
            print(f"  coarse fields: {c['sampler']}, kept every {c['thin']} "
                  f"{'sweeps' if c['sampler'] == 'cluster' else 'trajectories'}")
        print_observables(summary)
        print_free_energy(summary.get("free_energy"))
    return 0


def print_free_energy(fe: dict[str, Any] | None) -> None:
    """log Z ± error, f ± error and every caveat (docs/free_energy.md)."""
    if not fe:
        return
    print(f"  log Z = {fe['log_z']:.8g} ± {fe['error']:.2g}   f = −log Z/V = {fe['f']:.8g} ± "
          f"{fe['f_error']:.2g}")
    c = fe.get("coarse") or {}
    if c:
        print(f"    log Z_c = {c['value']:.8g} ± {c['error']:.2g} ({c['source']})")
    for cav in fe.get("caveats") or []:
        print(f"    caveat {cav['code']}: {cav['message']}")
    for d in fe.get("differences") or []:
        state = "ok" if d["trusted"] else "refused: " + ", ".join(
            x["code"] for x in d["caveats"])
        print(f"    κ = {d['kappa']:g}, λ = {d['lam']:g}: Δlog Z = {d['delta_log_z']:.6g} ± "
              f"{d['error']:.2g}, ESS/N {d['ess']:.3f} ({state})")


def cmd_run(args: argparse.Namespace) -> int:
    """Train → sample → direct HMC on the fine lattice with the same wall time → compare."""
    from core.jobs.report import compare, format_table, plot_comparison, plot_training
    from core.jobs.run import run_job

    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        return _fail("run", f"--out={out} is not empty: choose a new run directory")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    trained = _train(args, out / "model", "run")
    if isinstance(trained, int):
        return trained
    sampled = _sample(out / "model", args.n_samples, 32, args.seed, args.device, "run",
                      out / "flow")
    if isinstance(sampled, int):
        return sampled
    budget = time.perf_counter() - t0
    hmc_spec = HmcSpec(dim=args.dim, L=args.L, kappa=args.kappa, lam=args.lam,
                       n_samples=10**6 if args.L <= 16 else 10**5, chains=16, seed=args.seed,
                       device=args.device, max_seconds=budget)
    bar = ProgressBar()
    try:
        hmc = run_job(hmc_spec, workdir=out / "hmc", progress=bar).summary
    finally:
        bar.close()
    rows = compare(sampled["observables"], hmc["observables"])
    curve = json.loads((out / "model" / "metrics.json").read_text()).get("curve", [])
    plots = [str(plot_training(curve, out / "training.png")),
             str(plot_comparison(rows, out / "comparison.png"))]
    report = {"train": trained, "sample": sampled, "hmc": hmc, "budget_seconds": budget,
              "comparison": [r.__dict__ for r in rows], "plots": plots}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"\nflow: ESS/N {trained['ess']:.3f} after {trained['steps']} steps; Metropolis "
          f"acceptance {sampled['acceptance']:.3f}; ODE consistency "
          f"{sampled['ode_consistency']:.2g} nats; train+sample {budget:.0f} s")
    print(f"direct HMC on the fine lattice in the same {budget:.0f} s: acceptance "
          f"{hmc['acceptance']:.3f}")
    print(format_table(rows))
    print(f"plots: {', '.join(plots)}; full report: {out / 'report.json'}")
    return 0

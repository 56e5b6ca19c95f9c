"""Physics verbs: ``hmc``, ``train``, ``sample``, ``run`` — local runs of ``core.jobs.run``."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli.errors import one_line
from cli.progress import ProgressBar
from core.jobs.specs import HmcSpec


def _fail(prog: str, message: str) -> int:
    sys.stderr.write(f"srflow {prog}: error: {message}\n")
    return 2


def _theory_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dim", type=int, default=2, help="lattice dimension d (1, 2, 3)")
    p.add_argument("--L", type=int, required=True, help="linear lattice size")
    p.add_argument("--kappa", type=float, required=True, help="hopping parameter κ")
    p.add_argument("--lam", type=float, required=True, help="quartic coupling λ ≥ 0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def register(sub: Any) -> None:
    p = sub.add_parser("hmc", help="direct sampling (HMC or the cluster algorithm) on a "
                       "lattice: observables with errors")
    _theory_args(p)
    p.add_argument("--n-samples", type=int, required=True, help="configurations to keep")
    p.add_argument("--chains", type=int, default=16, help="independent chains")
    p.add_argument("--n-therm", type=int, default=500, help="thermalisation trajectories")
    p.add_argument("--integrator", default="omelyan", help="omelyan or leapfrog")
    p.add_argument("--algorithm", default="hmc",
                   help="hmc, or cluster (Wolff flips + Metropolis sweeps; even L)")
    p.add_argument("--clusters-per-sweep", type=int, default=1,
                   help="cluster: Wolff flips per Metropolis sweep")
    p.add_argument("--out", type=Path, default=None, help="write the ensemble (HDF5)")
    p.set_defaults(handler=cmd_hmc)


def print_observables(summary: dict[str, Any], file: Any = sys.stdout) -> None:
    """A human table of observables: mean ± error (τ_int)."""
    for name, o in summary["observables"].items():
        print(f"  {name:26s} {o['mean']: .6g} ± {o['error']:.2g}   τ_int={o['tau_int']:.2f}",
              file=file)


def cmd_hmc(args: argparse.Namespace) -> int:
    from core.jobs.protocol import JobError
    from core.jobs.run import run_job

    try:
        spec = HmcSpec(
            dim=args.dim, L=args.L, kappa=args.kappa, lam=args.lam, n_samples=args.n_samples,
            chains=args.chains, seed=args.seed, device=args.device, n_therm=args.n_therm,
            integrator=args.integrator, algorithm=args.algorithm,
            clusters_per_sweep=args.clusters_per_sweep,
        )
    except ValidationError as err:
        return _fail("hmc", one_line(err))
    bar = ProgressBar()
    with tempfile.TemporaryDirectory(prefix="srflow-hmc-") as tmp:
        try:
            result = run_job(spec, workdir=Path(tmp), progress=bar)
        except JobError as err:
            return _fail("hmc", str(err))
        finally:
            bar.close()
        summary = dict(result.summary)
        check = summary["hmc"]["chain_check"]
        if check.get("checked") and check["consistent"] is False:
            worst = check["abs_magnetization"]
            sys.stderr.write(
                f"srflow hmc: warning: chains disagree (|M|: χ²/dof {worst['chi2_per_dof']:.3g},"
                f" chain {worst['worst_chain']} at {worst['max_abs_z']:.1f}σ) — a domain wall or "
                "too short a run; errors are not trustworthy\n")
        if args.out is not None and result.ensemble is not None:
            move_file(result.ensemble, args.out)
            summary["out"] = str(args.out)
        else:
            summary["out"] = None
    if args.json:
        keep = ("theory", "acceptance", "observables", "seconds", "out")
        print(json.dumps({k: summary[k] for k in keep}))
    else:
        t = summary["theory"]
        label = "HMC" if summary["hmc"]["algorithm"] == "hmc" else "cluster"
        print(f"{label} d={t['dim']} L={t['L']} κ={t['kappa']} λ={t['lam']}: "
              f"acceptance {summary['acceptance']:.3f}, {summary['seconds']:.1f} s")
        print_observables(summary)
        if summary["out"]:
            print(f"ensemble written to {summary['out']}")
    return 0


def move_file(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``: a rename on one filesystem, else a copy to ``dst.partial``
    renamed into place; ``dst`` is never left half-written, nor is a ``.partial``."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    if _same_fs(src, dst):
        src.replace(dst)
        return
    tmp = dst.with_name(dst.name + ".partial")
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.parent.resolve().stat().st_dev
    except OSError:
        return False

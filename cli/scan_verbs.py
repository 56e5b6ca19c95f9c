"""``srflow scan``: a κ (and λ) grid at fixed (d, L), run locally by core.jobs.scan_job.

    srflow scan --method ir --dim 2 --L 8 --kappa 0.2,0.25,0.27,0.3 --lam 0.01 --out DIR

``--json`` prints one object ``{"points": [...], "plot": PATH}`` on stdout; the full record
(ensembles, timings, warm starts) is ``DIR/scan.json``. Errors: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cli.errors import one_line
from cli.progress import ProgressBar
from core.jobs.scan_spec import ScanSpec

POINT_KEYS = ("kappa", "lam", "ess", "couplings", "acceptance", "observables", "model")


def _fail(message: str) -> int:
    sys.stderr.write(f"srflow scan: error: {message}\n")
    return 2


def _floats(flag: str, text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag}={text!r}: give comma-separated numbers, e.g. "
                         "0.2,0.25,0.27") from None


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="a κ (λ) grid at fixed (d, L): per point train (warm "
                       "start from the previous point), sample, fig. 4 plot")
    p.add_argument("--method", default="ir", help="ir, uv or baseline")
    p.add_argument("--dim", type=int, default=2, help="lattice dimension d")
    p.add_argument("--L", type=int, required=True, help="fine linear size (coarse_L·2^n)")
    p.add_argument("--coarse-L", type=int, default=None,
                   help="coarse linear size (default: 8 for ir in d = 2 at L ≥ 16, else 4)")
    p.add_argument("--kappa", required=True, help="comma-separated κ grid, e.g. 0.2,0.25")
    p.add_argument("--lam", default="0.01", help="λ ≥ 0, or a comma-separated λ grid")
    p.add_argument("--max-minutes-per-point", type=float, default=None,
                   help="training wall-time budget per point")
    p.add_argument("--steps-per-point", type=int, default=500, help="optimiser steps per point")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--langevin-therm", type=int, default=None,
                   help="IR: coarse Langevin thermalisation steps (default 5·10⁴)")
    p.add_argument("--eval-samples", type=int, default=None,
                   help="fresh proposals for the final training ESS/N (default 4096)")
    p.add_argument("--n-samples", type=int, default=4000, help="configurations per point")
    p.add_argument("--chains", type=int, default=32, help="coarse sampler chains")
    p.add_argument("--coarse-sampler", default="hmc",
                   help="hmc, or cluster (Wolff flips + Metropolis sweeps on the coarse "
                   "lattice; super-resolving methods with an even coarse L)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="train every point from scratch")
    p.add_argument("--seed", type=int, default=0, help="point i uses seed S + i")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", type=Path, required=True, help="new directory for the scan")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=cmd_scan)


def _spec(args: argparse.Namespace) -> ScanSpec:
    return ScanSpec(
        method=args.method, dim=args.dim, L=args.L, coarse_L=args.coarse_L,
        kappa=_floats("--kappa", args.kappa), lam=_floats("--lam", args.lam),
        steps_per_point=args.steps_per_point, max_minutes_per_point=args.max_minutes_per_point,
        batch=args.batch, langevin_therm=args.langevin_therm, eval_samples=args.eval_samples,
        n_samples=args.n_samples, chains=args.chains, coarse_sampler=args.coarse_sampler,
        warm_start=not args.no_warm_start,
        seed=args.seed, device=args.device,
    )


def format_table(points: list[dict[str, Any]]) -> str:
    """One line per point: κ, λ, ESS/N, acceptance, κ_L − κ, ⟨|M|⟩ and χ with errors."""
    lines = [f"  {'κ':>7} {'λ':>7} {'ESS/N':>6} {'acc':>6} {'κ_L−κ':>8} "
             f"{'⟨|M|⟩':>20} {'χ':>20}"]
    for p in points:
        c = p["couplings"]
        shift = (c["coarse"]["kappa"] - c["fine"]["kappa"]) if c.get("coarse") else float("nan")
        am, chi = p["observables"]["abs_magnetization"], p["observables"]["susceptibility"]
        lines.append(f"  {p['kappa']:>7.4g} {p['lam']:>7.4g} {p['ess']:>6.3f} "
                     f"{p['acceptance']:>6.3f} {shift:>+8.4f} "
                     f"{am['mean']:>11.5g} ± {am['error']:<6.2g} "
                     f"{chi['mean']:>11.5g} ± {chi['error']:<6.2g}")
    return "\n".join(lines)


def cmd_scan(args: argparse.Namespace) -> int:
    from core.jobs.protocol import JobError
    from core.jobs.scan_job import run_scan_job

    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        return _fail(f"--out={out} is not empty: choose a new directory (nothing is "
                     "overwritten)")
    try:
        spec = _spec(args)
    except ValueError as err:  # ValidationError is a ValueError
        return _fail(one_line(err) if isinstance(err, ValidationError) else str(err))
    bar = ProgressBar()
    try:
        result = run_scan_job(spec, workdir=out, progress=bar)
    except JobError as err:
        return _fail(str(err))
    finally:
        bar.close()
    record = dict(result.summary)
    (out / "scan.json").write_text(json.dumps({"spec": spec.model_dump(mode="json"),
                                               **record}, indent=1))
    code = 0
    if record["stopped"] != "complete":
        code = 1
        sys.stderr.write(f"srflow scan: error: {record.get('error') or record['stopped']}; "
                         f"{len(record['points'])} of {record['n_points']} points finished "
                         f"and were kept in {out}\n")
    if args.json:
        print(json.dumps({"points": [{k: p[k] for k in POINT_KEYS} for p in record["points"]],
                          "plot": record["plot"]}))
        return code
    print(f"scan {spec.method} d={spec.dim} L={spec.L}: {len(record['points'])}/"
          f"{record['n_points']} points ({record['stopped']})")
    print(format_table(record["points"]))
    print(f"plot: {record['plot']}; record: {out / 'scan.json'}; models and ensembles "
          f"under {out}/point-NN/")
    return code

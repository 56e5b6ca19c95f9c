"""Client verbs of ``srflow`` (submit, status, wait, cancel, download, models) over HTTP.

Server and key: ``--url``/``--key`` or ``SRFLOW_URL``/``SRFLOW_KEY``. ``--json`` prints one
machine-readable document on stdout; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.client import SrflowClient, SrflowError
from core.settings import get_settings


def _client(args: argparse.Namespace) -> SrflowClient:
    s = get_settings()
    key = args.key or (s.key.get_secret_value() if s.key else None)
    if not key:
        raise SystemExit("srflow: no API key: pass --key or set SRFLOW_KEY")
    return SrflowClient(args.url or s.url, key)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``L=8 kappa=0.2 method=ir`` → {"L": 8, "kappa": 0.2, "method": "ir"}."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"srflow: {pair!r} is not NAME=VALUE (e.g. L=8)")
        name, value = pair.split("=", 1)
        out[name.strip().replace("-", "_")] = _value(value)
    return out


def _print_op(op: dict[str, Any], as_json: bool, base: str = "") -> None:
    """One line per job; a finished one adds where its outputs are (full URLs on ``base``)."""
    if as_json:
        print(json.dumps(op, indent=2))
        return
    meta = op["metadata"]
    prog = meta.get("progress") or {}
    line = f"{op['name']}  {meta['kind']}  {meta['state']}"
    if prog.get("total"):
        line += f"  step {prog.get('step')}/{prog.get('total')} ({prog.get('stage')})"
    print(line)
    if op.get("error"):
        print(f"  error: {op['error']['message']}")
    if op.get("response"):
        resp = op["response"]
        ens, model = resp.get("ensemble"), resp.get("model")
        scan = resp.get("summary") if meta["kind"] == "scan" else None
        if isinstance(scan, dict):  # one line per point, then the fig. 4 plot
            for pt in scan.get("points", []):
                print(f"  κ={pt['kappa']:g} λ={pt['lam']:g}  ESS/N {pt['ess']:.3f}  "
                      f"model {pt['model']}  ensemble {pt['ensemble']}")
            if scan.get("plot"):
                print(f"  plot {base}{scan['plot']}")
        if isinstance(ens, dict):
            print(f"  ensemble {ens['id']}  sha256 {ens.get('sha256')}")
            if ens.get("url"):
                print(f"    metadata {base}{ens['url']}\n    download {base}{ens['download']}")
        if isinstance(model, dict) and model.get("redacted"):
            print("  model (not visible to you)")
        elif isinstance(model, dict):
            print(f"  model {model['name']}/{model['version']}")
            if model.get("url"):
                print(f"    {base}{model['url']}")


def _wait(client: SrflowClient, job: str, as_json: bool) -> int:
    from tqdm import tqdm

    bar = tqdm(total=None, file=sys.stderr, unit="step", dynamic_ncols=True)

    def show(op: dict[str, Any]) -> None:
        p = op["metadata"].get("progress") or {}
        if p.get("total"):
            bar.total = p["total"]
        if isinstance(p.get("step"), int):
            bar.n = p["step"]
        figs = {k: p[k] for k in ("stage", "acceptance", "ess", "loss") if k in p}
        bar.set_postfix(figs, refresh=False)
        bar.set_description(op["metadata"]["state"])
        bar.refresh()

    try:
        op = client.wait(job, progress=show)
    finally:
        bar.close()
    _print_op(op, as_json, client.url)
    return 0 if op["metadata"]["state"] == "succeeded" else 1


def cmd_submit(args: argparse.Namespace) -> int:
    spec = json.loads(Path(args.spec_file).read_text()) if args.spec_file else {}
    spec.update(parse_params(args.params))
    with _client(args) as c:
        op = c.submit(args.kind, spec, model_name=args.model_name,
                      visibility=args.visibility, idempotency_key=args.idempotency_key)
        if args.wait:
            return _wait(c, op["name"], args.json)
    _print_op(op, args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as c:
        if args.job:
            _print_op(c.get(args.job), args.json, c.url)
            return 0
        ops = [op for _, op in zip(range(args.limit), c.jobs(kind=args.kind, state=args.state),
                                   strict=False)]
    if args.json:
        print(json.dumps(ops, indent=2))
    else:
        for op in ops:
            _print_op(op, False)
    return 0


def cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as c:
        return _wait(c, args.job, args.json)


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as c:
        _print_op(c.cancel(args.job), args.json)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    with _client(args) as c:
        if args.what == "ensemble":
            ref = args.ref
            if ref.startswith("jobs/"):  # a job: its ensemble
                ref = c.get(ref)["response"]["ensemble"]["id"]
            if args.pyerrors:  # the series as pyerrors JSON, converted by the server
                d = c.download_pyerrors(ref, Path(args.output or f"srflow-{ref}.json.gz"))
            else:
                d = c.download_ensemble(ref, Path(args.output or f"ensemble-{ref}.h5"))
        elif args.pyerrors:
            raise SystemExit("srflow: --pyerrors exports an ensemble: download ensemble ID "
                             "--pyerrors")
        else:
            name, _, version = args.ref.partition("/")
            if not version.isdigit():
                raise SystemExit("srflow: download model NAME/VERSION (e.g. ir-2d/3)")
            d = c.download_model(name, int(version),
                                 Path(args.output or f"{name}-v{version}.zip"))
    if args.json:
        print(json.dumps({"path": str(d.path), "sha256": d.sha256, "size": d.size}))
    else:
        note = "pyerrors JSON" if args.pyerrors else "verified"
        print(f"{d.path}  sha256 {d.sha256}  ({d.size} bytes, {note})")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    with _client(args) as c:
        found = c.models(dim=args.dim, L=args.L, kappa_min=args.kappa_min,
                         kappa_max=args.kappa_max, lam_min=args.lam_min, lam_max=args.lam_max,
                         method=args.method, min_ess=args.min_ess)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    for v in found:
        t = v["theory"]
        print(f"{v['ref']:<32} d={t['dim']} L={t['L']} κ={t['kappa']:g} λ={t['lam']:g} "
              f"{v['method']:<8} ESS/N={v['ess'] if v['ess'] is not None else '—'} "
              f"aliases={','.join(v['aliases']) or '—'}")
    return 0


def _guard(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args))
        except SrflowError as exc:
            print(f"srflow: {exc}", file=sys.stderr)
            for e in exc.problem.get("errors", []):
                print(f"  {e['field']}: {e['message']}", file=sys.stderr)
            return 2
    return run


def add_client_verbs(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None, help="server (SRFLOW_URL)")
    common.add_argument("--key", default=None, help="API key (SRFLOW_KEY)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    p = subparsers.add_parser("submit", parents=[common], help="submit a job: "
                              "srflow submit hmc dim=2 L=8 kappa=0.2 lam=0.01 n_samples=64")
    p.add_argument("kind", choices=["hmc", "train", "sample", "scan"])
    p.add_argument("params", nargs="*", help="spec fields NAME=VALUE")
    p.add_argument("--spec-file", default=None, help="JSON file with the spec")
    p.add_argument("--model-name", default=None, help="train: name of the registered model")
    p.add_argument("--visibility", choices=["private", "group", "public"], default=None)
    p.add_argument("--idempotency-key", default=None)
    p.add_argument("--wait", action="store_true", help="follow it to the end")
    p.set_defaults(handler=_guard(cmd_submit))

    p = subparsers.add_parser("status", parents=[common], help="a job, or recent jobs")
    p.add_argument("job", nargs="?")
    p.add_argument("--kind", default=None)
    p.add_argument("--state", default=None)
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=_guard(cmd_status))

    p = subparsers.add_parser("wait", parents=[common], help="follow a job (progress bar)")
    p.add_argument("job")
    p.set_defaults(handler=_guard(cmd_wait))

    p = subparsers.add_parser("cancel", parents=[common], help="cancel a job")
    p.add_argument("job")
    p.set_defaults(handler=_guard(cmd_cancel))

    p = subparsers.add_parser("download", parents=[common],
                              help="download an ensemble (sha256 verified) or a model")
    p.add_argument("what", choices=["ensemble", "model"])
    p.add_argument("ref", help="ensemble id (or jobs/ID), or model NAME/VERSION")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("--pyerrors", action="store_true",
                   help="the ensemble's per-configuration series (and a flow ensemble's "
                   "importance weights) as gzipped pyerrors JSON instead of the HDF5 file")
    p.set_defaults(handler=_guard(cmd_download))

    p = subparsers.add_parser("models", parents=[common], help="search registered models")
    p.add_argument("--dim", type=int)
    p.add_argument("--L", type=int)
    p.add_argument("--kappa-min", type=float)
    p.add_argument("--kappa-max", type=float)
    p.add_argument("--lam-min", type=float)
    p.add_argument("--lam-max", type=float)
    p.add_argument("--method")
    p.add_argument("--min-ess", type=float)
    p.set_defaults(handler=_guard(cmd_models))

"""``srflow demo``: the README's main job, on the embedded default (no Redis server).

Starts ``srflow serve`` in a fresh data directory, then over HTTP: trains a small
IR-matching flow (d=2, 4×4 → 8×8 near criticality), samples an exact fine ensemble with
it, runs direct fine-lattice HMC as the reference, downloads both ensembles verifying
their sha256 against the server's ETag and Repr-Digest, and prints the observables side
by side with their agreement in σ. Plots go next to the downloads.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="embedded service round trip: train → sample → compare")
    p.add_argument("--kappa", type=float, default=0.25)
    p.add_argument("--lam", type=float, default=0.01)
    p.add_argument("--L", type=int, default=8)
    p.add_argument("--steps", type=int, default=200, help="training steps")
    p.add_argument("--n-samples", type=int, default=4000)
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="downloads and plots")
    p.add_argument("--data-dir", type=Path, default=None, help="default: a temporary directory")
    p.set_defaults(handler=cmd_demo)


def _follow(client: Any, op: dict[str, Any], label: str) -> dict[str, Any]:
    bar = tqdm(desc=label, file=sys.stderr, leave=True, dynamic_ncols=True, mininterval=0.5)

    def show(o: dict[str, Any]) -> None:
        prog = (o.get("metadata") or {}).get("progress") or {}
        if prog.get("total"):
            bar.total = prog["total"]
        bar.n = int(prog.get("step") or 0)
        shown = {k: f"{prog[k]:.3g}" for k in ("ess", "acceptance", "loss")
                 if isinstance(prog.get(k), int | float)}
        bar.set_postfix(shown, refresh=False)
        bar.refresh()

    try:
        done = client.wait(op["name"], progress=show, timeout=3600)
    finally:
        bar.close()
    if done.get("error"):
        raise RuntimeError(f"{label} failed: {done['error'].get('message')}")
    return done


def cmd_demo(args: argparse.Namespace) -> int:
    from core.client import SrflowClient
    from core.jobs.report import compare, format_table, plot_comparison

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="srflow-demo-")
    data = args.data_dir or Path(tmp.name)
    key = f"srf_{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    port = _free_port()
    env = {**os.environ, "SRFLOW_ADMIN_KEY": key, "SRFLOW_DATA_DIR": str(data)}
    env.pop("SRFLOW_BROKER_URL", None)
    log = open(out / "serve.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port),
         "--data-dir", str(data)], env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    print(f"srflow demo: embedded service at {url} (data in {data}, log {out / 'serve.log'})",
          file=sys.stderr)
    try:
        with SrflowClient(url, key, timeout=60) as client:
            for _ in range(240):
                try:
                    if client.health().get("status") in ("ok", "degraded"):
                        break
                except Exception:  # not up yet
                    pass
                if server.poll() is not None:
                    raise RuntimeError(f"srflow serve exited; see {out / 'serve.log'}")
                time.sleep(0.5)
            theory = {"dim": 2, "L": args.L, "kappa": args.kappa, "lam": args.lam}
            t0 = time.perf_counter()
            train = _follow(client, client.submit(
                "train", {"method": "ir", **theory, "steps": args.steps},
                model_name="demo-ir"), "train (IR-matching)")
            reg = train["response"]["model"]
            ref = f"{reg['name']}/{reg['version']}"
            model = client.model_version(reg["name"], reg["version"])
            sample = _follow(client, client.submit(
                "sample", {"model": ref, "n_samples": args.n_samples}),
                "sample (flow + Metropolis)")
            budget = time.perf_counter() - t0
            hmc = _follow(client, client.submit(
                "hmc", {**theory, "n_samples": 10**6, "max_seconds": budget}),
                "direct HMC, same wall time")
            files = {}
            for label, op in (("flow", sample), ("hmc", hmc)):
                ens_id = op["response"]["ensemble"]["id"]
                dl = client.download_ensemble(ens_id, out / f"{label}.h5")
                files[label] = dl
            flow_obs = client.ensemble(sample["response"]["ensemble"]["id"])["observables"]
            hmc_obs = client.ensemble(hmc["response"]["ensemble"]["id"])["observables"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        tmp.cleanup()
    rows = compare(flow_obs, hmc_obs)
    plot = plot_comparison(rows, out / "comparison.png")
    coarse = (model.get("couplings") or {}).get("coarse") or {}
    print(f"\ntrained {ref}: ESS/N {model.get('ess') or float('nan'):.3f} on fresh proposals; "
          f"learned coarse κ_L = {coarse.get('kappa')} (fine κ = {args.kappa})")
    print(f"train + sample took {budget:.0f} s; direct HMC got the same wall time")
    print(format_table(rows))
    for label, dl in files.items():
        print(f"{label} ensemble: {dl.path} sha256 {dl.sha256[:16]}… verified against ETag "
              "and Repr-Digest")
    print(f"plot: {plot}")
    (out / "demo.json").write_text(json.dumps(
        {"model": ref, "flow": flow_obs, "hmc": hmc_obs, "budget_seconds": budget}, indent=1))
    return 0

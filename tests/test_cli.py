"""The ``srflow`` CLI: one JSON object with --json, one-line errors with a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.io import read_ensemble

SRFLOW = [sys.executable, "-m", "core.cli.main"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SRFLOW, *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_hmc_json_is_one_object_and_writes_the_ensemble(tmp_path: Path) -> None:
    out = tmp_path / "free.h5"
    proc = run("hmc", "--dim", "1", "--L", "8", "--kappa", "0.2", "--lam", "0",
               "--n-samples", "400", "--chains", "8", "--n-therm", "100", "--seed", "3",
               "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert set(summary) == {"theory", "acceptance", "observables", "seconds", "out"}
    assert summary["theory"] == {"dim": 1, "L": 8, "kappa": 0.2, "lam": 0.0}
    names = {"magnetization", "abs_magnetization", "phi2", "susceptibility",
             "susceptibility_connected", "binder", "action_density", "correlation_length"}
    assert set(summary["observables"]) == names
    assert all(set(v) == {"mean", "error", "tau_int"} for v in summary["observables"].values())
    chi = summary["observables"]["susceptibility"]
    exact = 1 / (2 * (1 - 2 * 0.2))  # free theory, d = 1
    assert abs(chi["mean"] - exact) < 4 * chi["error"]
    ens = read_ensemble(out)
    assert ens.configs.shape[1:] == (8,) and ens.meta.kappa == 0.2 and ens.meta.method == "hmc"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--L", "1"], "--L=1"),
        (["--lam", "-0.1"], "--lam=-0.1"),
        (["--kappa", "0.3", "--lam", "0"], "kappa=0.3"),
        (["--n-samples", "0"], "--n-samples=0"),
        (["--device", "tpu"], "--device='tpu'"),
    ],
)
def test_hmc_bad_input_is_one_line_and_non_zero(args: list[str], needle: str) -> None:
    base = {"--dim": "2", "--L": "8", "--kappa": "0.2", "--lam": "0.1", "--n-samples": "10"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    proc = run("hmc", *[x for kv in base.items() for x in kv])
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert proc.stdout == ""

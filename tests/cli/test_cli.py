"""The ``srflow`` CLI: one JSON object with --json, one-line errors with a non-zero exit."""

import json
from pathlib import Path

import pytest

from core.physics.io import read_ensemble
from tests.cli.helpers import run


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_train_then_sample_json_and_nothing_half_written(tmp_path: Path) -> None:
    model = tmp_path / "m"
    proc = run("train", "--method", "ir", "--L", "8", "--kappa", "0.2", "--lam", "0.01",
               "--steps", "3", "--batch", "16", "--langevin-therm", "200",
               "--eval-samples", "64", "--out", str(model), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary) == {"model", "method", "theory", "ess", "loss", "couplings", "steps",
                            "seconds"}
    assert summary["steps"] == 3 and 0 <= summary["ess"] <= 1
    assert set(summary["couplings"]) == {"coarse", "fine"}
    assert summary["couplings"]["fine"] == {"kappa": 0.2, "lam": 0.01}
    assert (model / "model.safetensors").is_file() and not (tmp_path / "m.partial").exists()

    out = tmp_path / "flow.h5"
    proc = run("sample", "--model", str(model), "--n-samples", "64", "--chains", "8",
               "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    sampled = json.loads(proc.stdout)
    assert set(sampled) == {"acceptance", "ess", "ode_consistency", "observables",
                            "free_energy", "seconds", "out"}
    fe = sampled["free_energy"]  # log Z of every sample, its caveats named (3 steps: many)
    assert fe["f"] == pytest.approx(-fe["log_z"] / 64) and fe["caveats"] and not fe["trusted"]
    assert read_ensemble(out).configs.shape == (64, 8, 8)
    text = run("sample", "--model", str(model), "--n-samples", "64", "--chains", "8",
               "--reweight-to", "0.21")
    assert text.returncode == 0, text.stderr
    assert "log Z = " in text.stdout and "caveat low_ess" in text.stdout
    assert "κ = 0.21, λ = 0.01: Δlog Z" in text.stdout

    again = run("train", "--L", "8", "--kappa", "0.2", "--lam", "0.01", "--out", str(model))
    assert again.returncode != 0 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--L", "24", "--kappa", "0.2", "--lam", "0.01"], "L=24 is not 8·2^n"),
        (["train", "--L", "8", "--kappa", "0.2", "--lam", "-1"], "--lam=-1.0"),
        (["train", "--method", "xy", "--L", "8", "--kappa", "0.2", "--lam", "0.1"], "--method"),
        (["train", "--L", "32", "--coarse-L", "6", "--kappa", "0.2", "--lam", "0.1"],
         "L=32 is not 6·2^n"),
        (["train", "--L", "16", "--coarse-L", "4", "--kernel-size", "9", "--kappa", "0.2",
          "--lam", "0.1"],
         "kernel_size=9 is wider than the first fine lattice"),
        (["train", "--method", "baseline", "--L", "8", "--field", "hollow", "--kappa", "0.2",
          "--lam", "0.1"], "field='hollow' is defined only for super-resolving"),
        (["train", "--L", "64", "--coarse-L", "4", "--max-minutes", "0.5", "--kappa", "0.2",
          "--lam", "0.1"],
         "cannot fit 4 grow stages"),
        (["train", "--L", "16", "--field", "wide", "--kappa", "0.2", "--lam", "0.1"],
         "--field='wide'"),
    ],
)
def test_train_bad_input_writes_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "m"
    proc = run(*args, "--out", str(out))
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and needle in proc.stderr, proc.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("content", [None, "not a flow"])
def test_sample_missing_or_corrupt_model_is_one_line(tmp_path: Path, content: str | None) -> None:
    model = tmp_path / "m"
    if content is not None:
        model.mkdir()
        (model / "config.json").write_text(content)
        (model / "model.safetensors").write_text(content)
    proc = run("sample", "--model", str(model), "--n-samples", "10")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and ("--model" in lines[0] or "model=" in lines[0]), proc.stderr

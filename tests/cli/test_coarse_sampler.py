"""``srflow sample --coarse-sampler {hmc,cluster}``: the cluster algorithm
as the coarse sampler of a flow; bad values and unusable models give one line, exit ≠ 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.physics.io import read_ensemble
from tests.cli.helpers import run
from tests.physics.exact.flows import untrained_flow


@pytest.mark.slow
def test_sample_with_cluster_coarse_sampler(tmp_path: Path) -> None:
    model, out = untrained_flow(tmp_path / "m"), tmp_path / "flow.h5"
    proc = run("sample", "--model", str(model), "--n-samples", "32", "--chains", "4",
               "--coarse-sampler", "cluster", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary) == {"acceptance", "ess", "ode_consistency", "observables", "seconds",
                            "out", "free_energy"}  # the --json contract, plus log Z
    ens = read_ensemble(out)
    assert ens.configs.shape == (32, 8, 8)
    assert ens.meta.sampler["coarse_sampler"] == "cluster"


@pytest.mark.parametrize(("kind", "value", "needle"), [
    ("super_resolving", "wolff", "--coarse-sampler='wolff'"),
    ("baseline", "cluster", "coarse_sampler='cluster': a baseline model"),
])
@pytest.mark.slow
def test_bad_coarse_sampler_is_one_line_and_non_zero(tmp_path: Path, kind: str, value: str,
                                                    needle: str) -> None:
    model = untrained_flow(tmp_path / "m", kind=kind)
    proc = run("sample", "--model", str(model), "--n-samples", "8", "--coarse-sampler", value)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert proc.stdout == ""

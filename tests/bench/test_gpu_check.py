"""bench/gpu_check.py: without a CUDA device it exits non-zero with one clear line and
writes no report; with ``--device cpu --quick`` every part comes back with its figures or
its error string."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# the figures each part must carry (finite, > 0) unless it records an error string
FIGURES: dict[str, tuple[str, ...]] = {
    "train": ("ess_fresh", "sample.configs_per_s", "sample.ess", "hmc.independent_chi_per_s",
              "flow_vs_hmc"),
    "critical": ("ess_fresh", "sample.configs_per_s", "sample.ess_x_configs_per_s"),
    "hmc": ("configs_per_s", "tau_int_chi", "independent_chi_per_s"),
    "cluster": ("configs_per_s", "tau_int_chi", "independent_chi_per_s"),
    "ratios": ("flow_vs_hmc", "flow_vs_cluster"),
    "compiled": ("eager_configs_per_s",),
    "compiled_step": ("eager_step_s",),
}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "OUT": str(tmp_path / "out"), "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1", **extra}


def _figure(part: dict[str, Any], path: str) -> Any:
    value: Any = part
    for key in path.split("."):
        value = value[key]
    return value


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_without_cuda_one_line_and_exit_3(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], cwd=tmp_path,
                         env=_env(tmp_path, CUDA_VISIBLE_DEVICES=""), capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], run.stderr
    assert run.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_quick_cpu_run_reports_every_part(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device",
                          "cpu", "--quick"], cwd=tmp_path, env=_env(tmp_path),
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    for name in ("train", "critical", "batch_sweep", "compiled", "compiled_step", "hmc",
                 "cluster", "ratios"):
        part = report[name]
        if "error" in part:
            assert isinstance(part["error"], str) and part["error"], (name, part)
            continue
        for path in FIGURES.get(name, ()):
            assert _positive(_figure(part, path)), (name, path, part)
        assert part["part_wall_s"] > 0
    sweep = report["batch_sweep"].get("points", [])
    assert [p["batch"] for p in sweep] == [16, 32] or "error" in report["batch_sweep"]
    for point in sweep:
        assert "error" in point or all(_positive(point[k]) for k in (
            "step_s", "train_configs_per_s", "push_s", "push_configs_per_s")), point
    for name, key in (("compiled", "compiled_configs_per_s"), ("compiled_step", "compiled_step_s")):
        part = report[name]
        if "error" not in part and "compile_error" not in part:
            assert _positive(part[key]), part
    compiled = report["compiled"]
    if "max_abs_diff_log_q" in compiled:  # compiled and eager push: the same log-density
        assert compiled["max_abs_diff_log_q"] <= 1e-4 * compiled["max_abs_log_q"], compiled

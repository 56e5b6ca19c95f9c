"""bench/gpu_check.py: without a CUDA device it exits non-zero with one clear line
and writes no report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_without_cuda_one_line_and_exit_3(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(tmp_path / "out"),
           "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 3, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], run.stderr
    assert run.stdout == "" and not (tmp_path / "out").exists()

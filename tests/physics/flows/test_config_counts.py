"""Kernel class counts of ``core.physics.flows.config`` in closed form.

The API computes them for an uploaded ``config.json`` before any tensor is read, so they
must cost O(1): the old enumeration took 2.9 s and ~400 MB at d = 3, L = 512 and would
enumerate ~1.4·10⁹ tuples at the allowed L = 4096.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from core.physics.flows.config import baseline_class_count
from core.physics.flows.vector_field import full_lattice_classes

ROOT = Path(__file__).resolve().parents[3]


def _enumerated(dim: int, size: int) -> int:
    values = sorted({min(i, size - i) for i in range(size)})
    return len(set(itertools.combinations_with_replacement(values, dim)))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_closed_form_matches_the_enumeration(dim: int) -> None:
    for size in range(2, 41):
        assert baseline_class_count(dim, size) == _enumerated(dim, size), (dim, size)


@pytest.mark.parametrize(("dim", "size"), [(1, 7), (2, 6), (2, 9), (3, 4), (3, 5)])
def test_closed_form_matches_the_model_kernel(dim: int, size: int) -> None:
    count, _ = full_lattice_classes(dim, size)
    assert baseline_class_count(dim, size) == count


PROBE = """
import json, time, tracemalloc
from core.physics.flows.config import FlowConfig, baseline_class_count, count_learnable
cfg = FlowConfig.model_validate({
    "kind": "baseline", "dim": 3, "fine_L": 4096, "levels": 0, "method": "baseline",
    "theory": {"kappa": 0.2, "lam": 0.01}})
tracemalloc.start()
t0 = time.perf_counter()
classes, params = baseline_class_count(3, 4096), count_learnable(cfg)
print(json.dumps({"classes": classes, "params": params, "s": time.perf_counter() - t0,
                  "peak": tracemalloc.get_traced_memory()[1]}))
"""


def test_largest_allowed_baseline_is_counted_at_once() -> None:
    # In a child process: the old enumeration ran for minutes in one C call holding the
    # GIL, so no in-process timeout could stop it; here it fails by TimeoutExpired.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=30, check=True, cwd=ROOT)
    got = json.loads(out.stdout)
    classes = math.comb(2048 + 3, 3)
    assert got["classes"] == classes == 1_435_853_825
    assert got["params"] == classes * 20 * 20 + 20 * 10 + 20 * 11 + 10
    assert got["s"] < 0.5 and got["peak"] < 1 << 20, got

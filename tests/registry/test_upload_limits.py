"""What an uploaded config.json may declare, and the JSON it may carry:
refused in closed form, before any tensor is read, naming the field."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from safetensors.numpy import save_file

from core.registry.uploads import UploadError, validate_flow
from tests.registry.flowfiles import CONFIG, files_of, tensors_for, write_flow

T = TypeVar("T")
BASELINE = {"kind": "baseline", "dim": 3, "fine_L": 512, "levels": 0, "method": "baseline",
            "theory": {"kappa": 0.2, "lam": 0.01}}


def _measured(fn: Callable[[], T]) -> tuple[T | UploadError, float, int]:
    """(result or the UploadError, seconds, peak traced bytes)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        out: T | UploadError = fn()
    except UploadError as exc:
        out = exc
    finally:
        seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, seconds, peak


def _with_config(tmp: Path, config: dict[str, Any]) -> dict[str, Path]:
    d = write_flow(tmp)  # small valid weights: the config must be refused before them
    (d / "config.json").write_text(json.dumps(config))
    return files_of(d)


def test_a_359_byte_baseline_config_is_refused_at_once(tmp_path: Path) -> None:
    # old: enumerated C(259, 3) kernel classes twice — 2.9 s and ~400 MB
    files = _with_config(tmp_path, BASELINE)
    assert files["config.json"].stat().st_size < 400
    err, seconds, peak = _measured(lambda: validate_flow(files))
    assert isinstance(err, UploadError), err
    assert err.field == "config.json" and "parameters" in err.message, err
    assert str(2**27) in err.message
    assert seconds < 0.5 and peak < 2 * 2**20, (seconds, peak)


SR = {**CONFIG, "coarse_L": 64, "fine_L": 128}


@pytest.mark.parametrize(("change", "field"), [
    ({"bond_freq": 4096}, "config.json:bond_freq"),
    ({"bond_time": 2000}, "config.json:bond_time"),
    ({"n_freq": 5000}, "config.json:n_freq"),
    ({"n_time": 1025}, "config.json:n_time"),
    ({"kernel_size": 101}, "config.json:kernel_size"),
    ({"dim": 3, "kernel_size": 65, "bond_freq": 1024, "bond_time": 1024}, "config.json"),
])
def test_architecture_caps_name_the_field(tmp_path: Path, change: dict[str, Any],
                                          field: str) -> None:
    err, seconds, _ = _measured(lambda: validate_flow(_with_config(tmp_path, {**SR, **change})))
    assert isinstance(err, UploadError), err
    assert err.field == field and err.status == 422, (err.field, err.message)
    assert seconds < 0.5


def test_a_flow_at_the_caps_is_not_refused_for_its_size(tmp_path: Path) -> None:
    big = {**CONFIG, "n_freq": 1024, "bond_freq": 1024, "bond_time": 8}
    validate_flow(files_of(write_flow(tmp_path, config=big)))


def _refusal(files: dict[str, Path]) -> UploadError:
    err, seconds, peak = _measured(lambda: validate_flow(files))
    assert isinstance(err, UploadError), err
    assert seconds < 1.0 and peak < 24 * 2**20, (seconds, peak)
    return err


def test_nested_json_in_metrics_is_refused_before_parsing(tmp_path: Path) -> None:
    # 1 MiB of "[]," parses to ~22 MB of lists (16 MiB, allowed before: ~350 MB)
    d = write_flow(tmp_path)
    (d / "metrics.json").write_text('{"curve": [' + "[]," * 350_000 + "[]]}")
    err = _refusal(files_of(d))
    assert err.field == "metrics.json" and "arrays/objects" in err.message


def test_oversized_config_and_safetensors_header_are_refused(tmp_path: Path) -> None:
    d = write_flow(tmp_path / "cfg")
    (d / "config.json").write_text(json.dumps(CONFIG) + " " * 70_000)
    err = _refusal(files_of(d))
    assert err.field == "config.json" and "larger than 65536" in err.message
    d = write_flow(tmp_path / "hdr")
    save_file(tensors_for(CONFIG), str(d / "model.safetensors"),
              metadata={"format": "srflow-flow", "pad": "x" * 2**21})
    err = _refusal(files_of(d))
    assert err.field == "model.safetensors" and "header length" in err.message

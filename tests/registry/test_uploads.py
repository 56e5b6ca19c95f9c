"""Upload validation (no torch, never unpickled): every refusal names the file and field."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from core.registry.uploads import UploadError, read_safetensors, validate_flow
from tests.registry.flowfiles import CONFIG, COUPLINGS, files_of, tensors_for, write_flow


def test_valid_flow_passes_with_couplings_read_from_the_weights(tmp_path: Path) -> None:
    flow = validate_flow(files_of(write_flow(tmp_path)))
    assert flow.config.fine_L == 8 and flow.config.levels == 1
    assert flow.couplings == {
        "coarse": {"kappa": COUPLINGS["coarse_kappa"], "lam": COUPLINGS["coarse_lam"]},
        "fine": {"kappa": COUPLINGS["fine_kappa"], "lam": COUPLINGS["fine_lam"]}}
    assert set(flow.paths) == {"model.safetensors", "config.json", "metrics.json"}
    assert flow.weights.tensors["flow.levels.0.cnf.field.weight_basis"].shape == (4, 3)


def _refused(files: dict[str, Path], field: str, needle: str) -> None:
    with pytest.raises(UploadError) as err:
        validate_flow(files)
    assert err.value.field == field and needle in err.value.message, (err.value.field,
                                                                       err.value.message)


def test_pickle_is_refused_without_unpickling(tmp_path: Path) -> None:
    d = write_flow(tmp_path)

    class Boom:
        def __reduce__(self) -> tuple:
            return (exec, ("raise SystemExit('unpickled!')",))

    (d / "model.safetensors").write_bytes(pickle.dumps(Boom(), protocol=4))
    _refused(files_of(d), "model.safetensors", "pickle")
    (d / "weights.pt").write_bytes(b"x")
    _refused(files_of(d), "weights.pt", "pickled files are refused")


def test_truncated_safetensors_is_refused(tmp_path: Path) -> None:
    d = write_flow(tmp_path)
    raw = (d / "model.safetensors").read_bytes()
    for cut in (4, 20, len(raw) - 3):
        (d / "model.safetensors").write_bytes(raw[:cut])
        with pytest.raises(UploadError, match="truncated"):
            read_safetensors(d / "model.safetensors")


def test_overlapping_offsets_and_bad_dtype_are_refused(tmp_path: Path) -> None:
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    raw = json.dumps(header).encode()
    p = tmp_path / "model.safetensors"
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 12)
    with pytest.raises(UploadError, match="not contiguous"):
        read_safetensors(p)
    header = {"a": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}
    raw = json.dumps(header).encode()
    p.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 8)
    with pytest.raises(UploadError, match="dtype 'I64' is not allowed"):
        read_safetensors(p)


def test_tensors_contradicting_the_config_are_refused(tmp_path: Path) -> None:
    t = tensors_for(CONFIG)
    t["flow.levels.0.cnf.field.weight_basis"] = np.zeros((4, 5), np.float32)
    _refused(files_of(write_flow(tmp_path / "a", tensors=t)),
             "model.safetensors:flow.levels.0.cnf.field.weight_basis", "contradicts config")
    wider = {**CONFIG, "fine_L": 16, "levels": 2}  # weights of one level, config of two
    _refused(files_of(write_flow(tmp_path / "b", config=wider, tensors=tensors_for(CONFIG))),
             "model.safetensors", "flow.levels.1")
    t = tensors_for(CONFIG)
    t["flow.extra"] = np.zeros(3, np.float32)
    _refused(files_of(write_flow(tmp_path / "c", tensors=t)), "model.safetensors:flow.extra",
             "does not have")
    t = tensors_for(CONFIG)
    t["flow.levels.0.noise.log_sigma"] = np.asarray(0.0, np.float64)
    _refused(files_of(write_flow(tmp_path / "d", tensors=t)),
             "model.safetensors:flow.levels.0.noise.log_sigma", "dtype float64")


def test_unknown_and_inconsistent_config_fields_are_refused(tmp_path: Path) -> None:
    _refused(files_of(write_flow(tmp_path / "a", config={**CONFIG, "colour": "red"},
                                 tensors=tensors_for(CONFIG))),
             "config.json:colour", "unknown field")
    _refused(files_of(write_flow(tmp_path / "b", config={**CONFIG, "fine_L": 12},
                                 tensors=tensors_for(CONFIG))),
             "config.json", "L=12 is not 4·2^n")


def test_registry_json_must_name_the_same_weights(tmp_path: Path) -> None:
    d = write_flow(tmp_path)
    (d / "registry.json").write_text(json.dumps({"sha256": "0" * 64}))
    _refused(files_of(d), "registry.json", "altered")

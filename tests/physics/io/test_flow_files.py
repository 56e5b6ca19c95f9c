"""Flow files: save → load gives bit-identical outputs; bad files are refused, never unpickled."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.physics.flows.config import FlowConfig
from core.physics.flows.gap import set_solver, solver_of
from core.physics.flows.rg_flow import build_flow
from core.physics.flows.solver import SolverConfig
from core.physics.io.flow_files import FlowFileError, load_flow, read_config, save_flow

COUPLINGS = {"coarse_kappa": 0.21, "coarse_lam": 0.02, "fine_kappa": 0.26, "fine_lam": 0.02}


def sr_config(dtype: str = "float64") -> FlowConfig:
    return FlowConfig(
        kind="super_resolving", dim=2, coarse_L=2, fine_L=8, levels=2, kernel_size=3,
        n_freq=4, n_time=3, bond_freq=3, bond_time=3, dtype=dtype,  # type: ignore[arg-type]
        theory=dict(kappa=0.26, lam=0.02), method="ir", seed=3, parent="models/abc/1",
    )  # fmt: skip


def trained(config: FlowConfig) -> torch.nn.Module:
    """A model whose weights differ from build_flow(config)'s initialisation."""
    flow = build_flow(config)
    g = torch.Generator().manual_seed(9)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_bit_identical(tmp_path: Path, dtype: str) -> None:
    config = sr_config(dtype)
    flow = trained(config)
    metrics = {"ess": 0.61, "curve": [[0, 0.1], [10, 0.5]]}
    save_flow(tmp_path / "m", flow, config, COUPLINGS, metrics)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "config.json", "metrics.json", "model.safetensors",
    ]  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporaries left behind
    loaded = load_flow(tmp_path / "m")
    assert loaded.config == config and loaded.metrics == metrics
    assert loaded.couplings == COUPLINGS  # float64 round trip is exact
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    phi = torch.randn(5, 2, 2, generator=torch.Generator().manual_seed(1)).to(tdtype)
    with torch.no_grad():
        a = flow(phi, torch.Generator().manual_seed(2))
        b = loaded.flow(phi, torch.Generator().manual_seed(2))
        assert torch.equal(a.phi, b.phi) and torch.equal(a.log_q_rel, b.log_q_rel)
        assert a.phi.dtype == tdtype
        assert torch.equal(flow.inverse(a.phi).log_q_rel, loaded.flow.inverse(a.phi).log_q_rel)


def test_baseline_round_trip(tmp_path: Path) -> None:
    config = FlowConfig(
        kind="baseline", dim=1, fine_L=8, levels=0, n_freq=5, method="baseline",
        dtype="float64", theory=dict(kappa=0.2, lam=0.1), learn_prior_sigma=True,
    )  # fmt: skip
    flow = trained(config)
    save_flow(tmp_path / "b", flow, config, COUPLINGS)
    loaded = load_flow(tmp_path / "b")
    with torch.no_grad():
        a = flow(4, torch.Generator().manual_seed(5))
        b = loaded.flow(4, torch.Generator().manual_seed(5))
    assert torch.equal(a.phi, b.phi) and torch.equal(a.log_q, b.log_q)
    assert loaded.metrics == {}


# config.json byte for byte as the code before the one-config-per-idea change wrote it
# (solver normalised through the pydantic mirror SolverSettings, hollow field, conditional base)
EARLIER_CONFIG_JSON = """{
  "kind": "super_resolving",
  "dim": 1,
  "coarse_L": 4,
  "fine_L": 16,
  "levels": 2,
  "kernel_size": 3,
  "n_freq": 4,
  "n_time": 3,
  "bond_freq": 3,
  "bond_time": 2,
  "solver": {
    "method": "midpoint",
    "steps": 6,
    "rtol": 1e-7,
    "atol": 1e-9,
    "adjoint": false,
    "t0": 0.0,
    "t1": 1.0
  },
  "dtype": "float64",
  "theory": {
    "kappa": 0.26,
    "lam": 0.02
  },
  "method": "uv",
  "seed": 4,
  "code_version": "0.1.0",
  "parent": "models/abc/1",
  "learn_prior_sigma": false,
  "field": "hollow",
  "base": "conditional",
  "hollow_channels": 3,
  "hollow_hidden": 5
}"""


def test_config_json_of_earlier_code_loads_and_is_written_back_unchanged(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(EARLIER_CONFIG_JSON)
    config = read_config(tmp_path / "old")
    assert config.solver_config() == SolverConfig(method="midpoint", steps=6)
    flow = trained(config)
    assert solver_of(flow) == SolverConfig(method="midpoint", steps=6)
    saved = save_flow(tmp_path / "new", flow, config, COUPLINGS)
    assert (saved / "config.json").read_text() == EARLIER_CONFIG_JSON
    loaded = load_flow(saved)
    assert solver_of(loaded.flow) == SolverConfig(method="midpoint", steps=6)
    phi = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        a = flow(phi, torch.Generator().manual_seed(2))
        b = loaded.flow(phi, torch.Generator().manual_seed(2))
    assert torch.equal(a.phi, b.phi) and torch.equal(a.log_q_rel, b.log_q_rel)


def test_refined_solver_is_stored_and_reloaded(tmp_path: Path) -> None:
    """What training does when the gap monitor refines the solver: the flow's solver goes
    into config.json (FlowConfig.solver, as SolverConfig.to_dict) and comes back on load."""
    config = sr_config()
    flow = trained(config)
    set_solver(flow, solver_of(flow).with_steps(64))
    config = config.model_copy(update={"solver": solver_of(flow).to_dict()})
    saved = save_flow(tmp_path / "m", flow, config, COUPLINGS)
    assert json.loads((saved / "config.json").read_text())["solver"]["steps"] == 64
    loaded = load_flow(saved)
    assert loaded.config == config
    assert all(level.cnf.solver == SolverConfig(steps=64) for level in loaded.flow.levels)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    config = sr_config()
    return save_flow(tmp_path / "m", trained(config), config, COUPLINGS, {"ess": 0.5})


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "metrics.json"])
def test_missing_file_refused(saved: Path, name: str) -> None:
    (saved / name).unlink()
    with pytest.raises(FlowFileError, match=rf"{name}: file missing"):
        load_flow(saved)


def _rewrite(saved: Path, edit) -> None:  # type: ignore[no-untyped-def]
    tensors = load_file(str(saved / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(saved / "model.safetensors"))


def test_tensor_shape_dtype_name_mismatches_refused(saved: Path) -> None:
    key = "flow.levels.1.cnf.field.weight_space"
    original = load_file(str(saved / "model.safetensors"))

    def restore() -> None:
        save_file(original, str(saved / "model.safetensors"))

    cases = [
        (lambda t: t.__setitem__(key, torch.zeros(7, 3, 3)), rf"{key}' has shape \(7, 3, 3\)"),
        (lambda t: t.__setitem__(key, t[key].float()), rf"{key}' has dtype float32"),
        (lambda t: t.pop("couplings.fine_kappa"), "'couplings.fine_kappa' is missing"),
        (lambda t: t.__setitem__("flow.evil", torch.zeros(1)), "unexpected tensor 'flow.evil'"),
        (lambda t: t.__setitem__(key, t[key] * math.inf), rf"{key}' has non-finite"),
    ]
    for edit, message in cases:
        _rewrite(saved, edit)
        with pytest.raises(FlowFileError, match=message) as info:
            load_flow(saved)
        assert "model.safetensors" in str(info.value)
        restore()
    load_flow(saved)  # restored file loads again


def test_corrupt_and_pickled_weights_refused(saved: Path) -> None:
    raw = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(raw[:-10])
    with pytest.raises(FlowFileError, match=r"model\.safetensors: not a valid safetensors"):
        load_flow(saved)
    # a pickle (what torch.save writes) is refused without being unpickled
    torch.save({"x": torch.zeros(1)}, saved / "model.safetensors")
    with pytest.raises(FlowFileError, match="not a valid safetensors"):
        load_flow(saved)


def test_config_schema_enforced(saved: Path) -> None:
    data = json.loads((saved / "config.json").read_text())
    data["kernel_size"] = 2  # valid config, but W̃ has 3 classes, not 6: the tensor check
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(FlowFileError, match="weight_space' has shape"):
        load_flow(saved)
    data["fine_L"] = 24
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(
        FlowFileError, match=r"(?s)config\.json: invalid flow config.*L=24 is not 2·2"
    ):
        load_flow(saved)
    data["fine_L"], data["kernel_size"], data["mystery"] = 8, 3, True
    (saved / "config.json").write_text(json.dumps(data))
    with pytest.raises(FlowFileError, match=r"(?s)config\.json: invalid flow config.*mystery"):
        load_flow(saved)
    (saved / "config.json").write_text("{not json")
    with pytest.raises(FlowFileError, match=r"config\.json"):
        load_flow(saved)


def test_save_refuses_overwrite_and_bad_couplings(saved: Path) -> None:
    config = sr_config()
    with pytest.raises(FileExistsError):
        save_flow(saved, build_flow(config), config, COUPLINGS)
    with pytest.raises(ValueError, match="couplings must have exactly"):
        save_flow(saved.parent / "n", build_flow(config), config, {"fine_kappa": 0.1})
    save_flow(saved, build_flow(config), config, COUPLINGS, {"v": 2}, overwrite=True)
    assert load_flow(saved).metrics == {"v": 2}
    assert sorted(p.name for p in saved.parent.iterdir()) == ["m"]


def test_failed_overwrite_keeps_the_previous_model(saved: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while swapping the new directory in leaves the old model where it was."""
    import core.physics.io.flow_files as flow_files

    config = sr_config()
    real_replace = flow_files.os.replace
    calls: list[int] = []

    def flaky_replace(src: object, dst: object) -> None:
        calls.append(1)
        if len(calls) == 2:  # the new directory onto the target, after the old moved aside
            raise KeyboardInterrupt
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(flow_files.os, "replace", flaky_replace)
    with pytest.raises(KeyboardInterrupt):
        save_flow(saved, build_flow(config), config, COUPLINGS, {"v": 2}, overwrite=True)
    monkeypatch.undo()
    assert load_flow(saved).metrics != {"v": 2}
    assert sorted(p.name for p in saved.parent.iterdir()) == ["m"]

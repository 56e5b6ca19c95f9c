"""The one solver definition: its record in config.json, the refusal of bad (uploaded) records,
and the round trip config.json → SolverConfig → every CNF of the built flow."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from core.physics.flows.config import FlowConfig
from core.physics.flows.gap import solver_of
from core.physics.flows.rg_flow import SuperResolvingFlow, build_flow
from core.physics.flows.solver import (
    ADAPTIVE,
    FIXED_STEP,
    LIBRARY_STEPS,
    SOLVER_METHODS,
    SolverConfig,
)

# config.json's "solver" as every stored flow has it: all seven keys, in this order
RECORD = {"method": "rk4", "steps": 32, "rtol": 1e-7, "atol": 1e-9, "adjoint": False,
          "t0": 0.0, "t1": 1.0}  # fmt: skip
THEORY = dict(theory=dict(kappa=0.27, lam=0.02), dtype="float64", n_freq=4, n_time=3)
KINDS: dict[str, dict[str, Any]] = {
    "super_resolving": dict(kind="super_resolving", dim=2, coarse_L=2, fine_L=8, levels=2,
                            kernel_size=3, method="ir", **THEORY),
    "baseline": dict(kind="baseline", dim=1, fine_L=8, levels=0, method="baseline", **THEORY),
}  # fmt: skip


def test_record_is_config_json_solver() -> None:
    assert SolverConfig().to_dict() == RECORD and list(SolverConfig().to_dict()) == list(RECORD)
    assert SolverConfig().steps == LIBRARY_STEPS
    cfg = SolverConfig(method="dopri5", rtol=1e-6, atol=1e-8, adjoint=True)
    assert SolverConfig.from_dict(cfg.to_dict()) == cfg
    euler = SolverConfig(method="euler", steps=8)
    assert SolverConfig.from_dict({"method": "euler", "steps": 8}) == euler
    assert euler.with_steps(16) == SolverConfig(method="euler", steps=16)
    assert euler.with_tolerances(1e-3, 1e-4).to_dict() == {**euler.to_dict(), "rtol": 1e-3,
                                                           "atol": 1e-4}  # fmt: skip
    assert euler.fixed_step and not SolverConfig(method="dopri5").fixed_step
    assert sorted(SOLVER_METHODS) == sorted(FIXED_STEP + ADAPTIVE)
    # what a job writes (TrainSpec.solver, solver_steps) is stored with every key filled in
    config = FlowConfig(**KINDS["baseline"], solver={"method": "rk4", "steps": 8})
    assert json.loads(config.model_dump_json())["solver"] == {**RECORD, "steps": 8}


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"method": "rk45"}, "method"),
        ({"steps": 0}, "steps"),
        ({"steps": 10001}, "steps"),
        ({"steps": "many"}, "steps"),
        ({"rtol": 0.0}, "rtol"),
        ({"adjoint": "perhaps"}, "adjoint"),
        ({"t0": 1.0, "t1": 1.0}, "interval"),
        ({"order": 4}, "order"),
    ],
)
def test_bad_records_are_refused_by_the_solver_and_by_flow_config(
    record: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        SolverConfig.from_dict(record)
    with pytest.raises(ValidationError, match=match):
        FlowConfig(**KINDS["super_resolving"], solver=record)


def test_changed_copies_are_validated_too() -> None:
    with pytest.raises(ValueError, match="steps"):
        SolverConfig(method="rk4", steps=8).with_steps(0)
    with pytest.raises(ValueError, match="rtol"):
        SolverConfig(method="dopri5").with_tolerances(0.0, 1e-9)
    with pytest.raises(ValidationError, match="frozen"):
        SolverConfig().steps = 4  # type: ignore[misc]


@pytest.mark.parametrize("kind", list(KINDS))
def test_config_json_solver_reaches_every_cnf(kind: str) -> None:
    """config.json → FlowConfig → build_flow: each CNF integrates with the stored solver, its
    field's time kernel lives on the stored interval, and the flow reports the same record."""
    record = {"method": "midpoint", "steps": 5, "rtol": 1e-6, "atol": 1e-8, "adjoint": True,
              "t0": 0.0, "t1": 2.0}  # fmt: skip
    text = FlowConfig(**KINDS[kind], solver=record).model_dump_json()
    config = FlowConfig.model_validate_json(text)
    assert json.loads(text)["solver"] == record
    flow = build_flow(config)
    cnfs = [level.cnf for level in flow.levels] if kind == "super_resolving" else [flow.cnf]
    for cnf in cnfs:
        assert cnf.solver == SolverConfig.from_dict(record) == config.solver_config()
        assert (cnf.field.t0, cnf.field.t1) == (0.0, 2.0)
    assert solver_of(flow).to_dict() == record


def test_the_stored_step_count_is_the_one_integrated() -> None:
    config = FlowConfig(**KINDS["super_resolving"], solver={"method": "rk4", "steps": 3})
    flow = build_flow(config)
    assert isinstance(flow, SuperResolvingFlow)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    phi = torch.randn(2, 2, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        stored = flow(phi, torch.Generator().manual_seed(2))
        explicit = flow(phi, torch.Generator().manual_seed(2), config.solver_config())
        finer = flow(phi, torch.Generator().manual_seed(2), SolverConfig(method="rk4", steps=12))
    assert torch.equal(stored.log_q_rel, explicit.log_q_rel)
    assert float((stored.log_q_rel - finer.log_q_rel).abs().max()) > 1e-6

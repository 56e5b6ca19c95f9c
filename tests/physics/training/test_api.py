"""End to end: train() → model directory (core.physics.io.flow_files) → sample() for IR, UV and
the baseline; result fields, saved couplings and metrics, warm start from a parent model.

Tiny flows (F = 3, D = 2, bond 3, 4 steps) and short samplers keep each case ~2 s; these
test the plumbing, not the physics (tests/physics/exact/test_exactness.py does that)."""

import json
import math
from pathlib import Path

import pytest
import torch

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.exact.sampler import sample
from core.physics.io.flow_files import load_flow
from core.physics.training.api import TrainOptions, train
from core.physics.training.logz import LogZConfig
from core.physics.training.plan import TrainPlan
from core.physics.training.warm import WarmStartError, parent_kernel_size

OPTS = TrainOptions(langevin_between=20, logz=LogZConfig(n_configs=200, chains=10, n_therm=20),
                    gap_every=2)


def _spec(**kw: object) -> TrainSpec:
    base = dict(dim=2, L=8, coarse_L=4, kappa=0.22, lam=0.01, steps=4, batch=16, n_freq=3,
                n_time=2, bond_freq=3, bond_time=3, solver_steps=4, langevin_therm=200,
                eval_samples=256)
    base.update(kw)
    return TrainSpec(**base)  # type: ignore[arg-type]


def _plan(**kw: object) -> TrainPlan:
    return train_plan(_spec(**kw))


@pytest.mark.parametrize("method", ["ir", "uv", "baseline"])
def test_train_then_sample(tmp_path: Path, method: str) -> None:
    res = train(_plan(method=method), workdir=tmp_path / "w", options=OPTS)
    assert res.method == method and res.steps == 4 and res.stopped == "steps"
    assert 0.0 < res.ess <= 1.0 and math.isfinite(res.loss) and 0 <= res.gap < 0.5
    assert res.model_dir == tmp_path / "w" / "model"
    loaded = load_flow(res.model_dir)
    assert loaded.config.method == method and loaded.config.fine_L == 8
    fine = res.couplings["fine"]
    assert fine is not None and loaded.couplings["fine_kappa"] == fine["kappa"]
    if method == "ir":  # coarse κ_L learns, fine κ fixed
        assert fine["kappa"] == 0.22 and res.couplings["coarse"]["kappa"] != 0.22  # type: ignore[index]
    elif method == "uv":  # fine κ learns, coarse fixed
        assert res.couplings["coarse"] == {"kappa": 0.22, "lam": 0.01} and fine["kappa"] != 0.22
    else:
        assert res.couplings["coarse"] is None and fine == {"kappa": 0.22, "lam": 0.01}
    metrics = json.loads((res.model_dir / "metrics.json").read_text())
    assert len(metrics["curve"]) == 4 and metrics["eval_samples"] == 256
    out = sample(res.model_dir, n_samples=64, seed=1, chains=8)
    assert out.configs.shape == (64, 8, 8) and out.n_proposals == 64
    assert 0.0 <= out.acceptance <= 1.0 and 0.0 < out.ess <= 1.0
    assert out.fine.kappa == fine["kappa"] and out.ode_consistency < 0.5
    assert set(out.observables) >= {"abs_magnetization", "susceptibility", "action_density"}
    assert out.log_q.dtype == torch.float64 and out.action.dtype == torch.float64


def test_warm_start_seeds_levels_and_couplings(tmp_path: Path) -> None:
    parent = train(_plan(L=8, steps=3), workdir=tmp_path / "p", options=OPTS)
    child = train(_plan(L=16, steps=0), workdir=tmp_path / "c", options=OPTS,
                  init_dir=parent.model_dir)
    a, b = load_flow(parent.model_dir), load_flow(child.model_dir)
    assert b.config.parent == str(parent.model_dir) and b.config.levels == 2
    pa, pb = a.flow.state_dict(), b.flow.state_dict()
    for key, value in pa.items():  # level 0 copied, level 1 = copy of the parent's last
        assert torch.equal(pb[key], value)
        assert torch.equal(pb[key.replace("levels.0", "levels.1")], value)
    assert b.couplings["coarse_kappa"] == a.couplings["coarse_kappa"]  # learned κ_L carried
    with pytest.raises(WarmStartError, match="n_freq"):
        train(_plan(n_freq=4), workdir=tmp_path / "x", options=OPTS, init_dir=parent.model_dir)


def test_a_warm_start_without_a_kernel_takes_the_parents(tmp_path: Path) -> None:
    """kernel_size unset + parent: the parent's k (3 here), not the default for coarse_L
    (5): registry models trained before a default change still seed such a child. An
    explicit kernel that differs is still refused, naming the field."""
    parent = train(_plan(kernel_size=3, steps=1), workdir=tmp_path / "p", options=OPTS)
    assert _spec().kernel_size is None and _plan().kernel_size == 5
    assert parent_kernel_size(parent.model_dir) == 3 and parent_kernel_size(None) is None
    plan = train_plan(_spec(steps=0), parent_kernel_size(parent.model_dir))
    child = train(plan, workdir=tmp_path / "c", options=OPTS, init_dir=parent.model_dir)
    assert load_flow(child.model_dir).config.kernel_size == 3
    explicit = train_plan(_spec(kernel_size=5, steps=0), parent_kernel_size(parent.model_dir))
    with pytest.raises(WarmStartError, match="kernel_size=3 but this run needs kernel_size=5"):
        train(explicit, workdir=tmp_path / "x", options=OPTS, init_dir=parent.model_dir)


def test_spec_fields_reach_the_model(tmp_path: Path) -> None:
    res = train(_plan(steps=2, eval_samples=128, kinetic_weight=0.0, coupling_lr=5e-3),
                workdir=tmp_path, options=OPTS)
    metrics = json.loads((res.model_dir / "metrics.json").read_text())
    assert metrics["eval_samples"] == 128 and metrics["kinetic_weight"] == 0.0
    assert metrics["coupling_lr"] == 5e-3
    assert "kinetic" not in metrics["curve"][0]["extra"]  # no regulariser term was computed


@pytest.mark.parametrize("method", ["ir", "baseline"])
def test_refined_solver_is_saved_with_the_model_and_resumed(tmp_path: Path,
                                                            method: str) -> None:
    """A solver the gap monitor refined is part of the model: config.json carries it (so
    sampling integrates with it), the curve records it, and a resumed run keeps it. A
    negative refinement threshold forces the doubling 4 → 8 → 16 (the cap)."""
    from dataclasses import replace

    from core.physics.flows.gap import solver_of

    opts = replace(OPTS, gap_refine_at=-1.0, max_solver_steps=16)  # < any gap, even 0.0
    plan = _plan(method=method, steps=2, solver_steps=4)
    res = train(plan, workdir=tmp_path / "w", options=replace(opts, gap_every=1))
    config = json.loads((res.model_dir / "config.json").read_text())
    assert config["solver"]["steps"] == 16
    metrics = json.loads((res.model_dir / "metrics.json").read_text())
    assert metrics["curve"][0]["extra"]["solver_steps"] == 16
    assert solver_of(load_flow(res.model_dir).flow).steps == 16
    # resume with refinement off: the checkpoint, not the spec's 4 steps, sets the solver
    more = train(replace(plan, steps=3), workdir=tmp_path / "w",
                 options=replace(OPTS, gap_refine_at=None))
    assert more.steps == 3
    assert json.loads((more.model_dir / "config.json").read_text())["solver"]["steps"] == 16

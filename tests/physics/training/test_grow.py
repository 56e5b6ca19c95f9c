"""Growing a stack level by level (core.physics.training.grow): stages, frozen or slowed lower
levels, resume after a cancel (bit-exact), growing a trained parent, and the job's default.
Tiny flows (F = 3, D = 2, bond 3, 4 RK4 steps); plumbing, not physics."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.jobs.specs import TrainSpec
from core.jobs.train_plan import train_plan
from core.physics.io.flow_files import load_flow
from core.physics.training.api import TrainOptions, train
from core.physics.training.grow import GrowConfig, should_grow, stage_sizes, train_grown
from core.physics.training.logz import LogZConfig
from core.physics.training.plan import TrainPlan

OPTS = TrainOptions(langevin_between=20, logz=LogZConfig(n_configs=200, chains=10, n_therm=20),
                    gap_every=2, checkpoint_every=1)


def _plan(**kw: object) -> TrainPlan:
    base = dict(dim=2, L=16, coarse_L=4, kappa=0.22, lam=0.01, steps=3, batch=8, n_freq=3,
                n_time=2, bond_freq=3, bond_time=3, solver_steps=4, langevin_therm=200,
                eval_samples=128)
    base.update(kw)
    return train_plan(TrainSpec(**base))  # type: ignore[arg-type]


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.mark.slow
def test_stages_train_one_level_more_each(tmp_path: Path) -> None:
    plan = _plan(L=32)
    assert stage_sizes(plan) == [8, 16, 32] and should_grow(plan)
    seen: list[float] = []
    res = train_grown(plan, workdir=tmp_path, options=OPTS,
                      progress=lambda step, total, m: seen.append(m["L"]))
    assert res.model_dir == tmp_path / "model" and res.steps == 9 and res.stopped == "steps"
    metrics = json.loads((res.model_dir / "metrics.json").read_text())
    assert [g["L"] for g in metrics["grow"]] == [8, 16, 32]
    assert [g["levels"] for g in metrics["grow"]] == [1, 2, 3]
    assert sorted(set(seen)) == [8.0, 16.0, 32.0]
    walls = [r["wall"] for r in metrics["grow_curve"]]
    assert [r["L"] for r in metrics["grow_curve"]] == [8] * 3 + [16] * 3 + [32] * 3
    assert walls == sorted(walls)  # one clock across the stages
    loaded = load_flow(res.model_dir)
    assert loaded.config.fine_L == 32 and loaded.config.levels == 3
    assert loaded.config.parent is None  # scratch stage directories are not parents
    # κ_L carries over: stage 2 starts where stage 1 ended, so it differs from the plan's
    assert metrics["grow"][0]["coarse_kappa"] != 0.22


def test_stage_lr_factor_scales_the_later_stages_only(tmp_path: Path) -> None:
    res = train_grown(_plan(lr=0.02, stage_lr_factor=0.25), workdir=tmp_path, options=OPTS)
    lrs = {L: json.loads((tmp_path / f"stage-L{L}" / "model" / "metrics.json").read_text())
           ["curve"][0]["lr"] for L in (8, 16)}
    assert lrs[8] == pytest.approx(0.02) and lrs[16] == pytest.approx(0.005)
    assert res.steps == 6


def test_stage_coupling_lr_factor_zero_holds_the_first_stages_couplings(tmp_path: Path) -> None:
    res = train_grown(_plan(stage_coupling_lr_factor=0.0), workdir=tmp_path, options=OPTS)
    curves = {L: json.loads((tmp_path / f"stage-L{L}" / "model" / "metrics.json").read_text())
              ["curve"] for L in (8, 16)}
    first = curves[8][-1]["coarse_kappa"]
    assert curves[8][0]["coarse_kappa"] != first  # stage 1 learns κ_L ...
    assert {r["coarse_kappa"] for r in curves[16]} == {first}  # ... stage 2 holds it
    assert res.couplings["coarse"] is not None and res.couplings["coarse"]["kappa"] == first


def test_frozen_lower_levels_keep_their_weights(tmp_path: Path) -> None:
    plan = _plan()
    res = train_grown(replace(plan, lower_lr_factor=0.0), workdir=tmp_path / "f", options=OPTS)
    first = _weights(tmp_path / "f" / "stage-L8" / "model")
    final = _weights(res.model_dir)
    level0 = [k for k in first if k.startswith("flow.levels.0.")]
    assert level0 and all(torch.equal(first[k], final[k]) for k in level0)
    assert not torch.equal(final["flow.levels.1.cnf.field.weight_space"],
                           final["flow.levels.0.cnf.field.weight_space"])
    slow = train_grown(replace(plan, lower_lr_factor=0.2), workdir=tmp_path / "s", options=OPTS)
    moved = _weights(slow.model_dir)
    assert any(not torch.equal(first[k], moved[k]) for k in level0)


@pytest.mark.slow
def test_cancel_then_resume_is_bit_exact(tmp_path: Path) -> None:
    plan = _plan(steps=4)
    whole = train_grown(plan, workdir=tmp_path / "a", options=OPTS)
    flag = {"stop": False}

    def report(step: int, _total: int, metrics: dict[str, float]) -> None:
        if metrics["L"] == 16.0 and step >= plan.steps + 2:  # the second stage's 2nd step
            flag["stop"] = True

    part = train_grown(plan, workdir=tmp_path / "b", options=OPTS, progress=report,
                       should_stop=lambda: flag["stop"])
    assert part.stopped == "cancelled" and not (tmp_path / "b" / "model").exists()
    assert (tmp_path / "b" / "stage-L8" / "stage.json").is_file()
    again = train_grown(plan, workdir=tmp_path / "b", options=OPTS)
    a, b = _weights(whole.model_dir), _weights(again.model_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert again.ess == whole.ess


@pytest.mark.slow
def test_a_trained_stack_grows_into_a_larger_lattice(tmp_path: Path) -> None:
    parent = train(_plan(L=16, grow=False), workdir=tmp_path / "p", options=OPTS)
    plan = _plan(L=64)
    assert stage_sizes(plan, parent_levels=2) == [32, 64]
    res = train_grown(plan, workdir=tmp_path / "c", options=OPTS, init_dir=parent.model_dir)
    metrics = json.loads((res.model_dir / "metrics.json").read_text())
    assert [g["L"] for g in metrics["grow"]] == [32, 64]
    pw, cw = _weights(parent.model_dir), _weights(res.model_dir)
    assert cw["flow.levels.3.noise.log_sigma"].shape == pw["flow.levels.1.noise.log_sigma"].shape
    # a parent with every level is fine-tuned, not grown
    assert not should_grow(_plan(L=16), parent.model_dir)
    with pytest.raises(ValueError, match="nothing to grow"):
        train_grown(_plan(L=16), workdir=tmp_path / "d", options=OPTS,
                    init_dir=parent.model_dir)


def test_pipeline_grows_by_default_and_opts_out(tmp_path: Path) -> None:
    assert should_grow(_plan(L=16)) and not should_grow(_plan(L=16, grow=False))
    assert not should_grow(_plan(L=8)) and not should_grow(_plan(method="baseline", L=8))


def test_later_stages_scale_the_coupling_lr_and_cap_the_intermediate_evaluation(
        tmp_path: Path) -> None:
    """An explicit coupling lr is scaled by stage_coupling_lr_factor after the first stage
    like the default one; an intermediate stage's ESS/N uses ≤ GrowConfig.stage_eval
    proposals, the final one the plan's eval_samples."""
    plan = _plan(coupling_lr=4e-3, stage_coupling_lr_factor=0.5)
    train_grown(plan, workdir=tmp_path, options=OPTS, grow=GrowConfig(stage_eval=64))
    metrics = {L: json.loads((tmp_path / f"stage-L{L}" / "model" / "metrics.json").read_text())
               for L in (8, 16)}
    assert metrics[8]["coupling_lr"] == 4e-3 and metrics[16]["coupling_lr"] == 2e-3
    assert metrics[8]["eval_samples"] == 64 and metrics[16]["eval_samples"] == 128

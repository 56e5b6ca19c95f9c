"""Job specs: the paper's defaults and errors that name the field and the fix."""

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from core.jobs.request import JobRequest
from core.jobs.specs import TrainSpec

adapter: TypeAdapter = TypeAdapter(JobRequest)


def test_train_example_from_the_issue_validates() -> None:
    job = adapter.validate_python(
        {"kind": "train", "spec": {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01,
                                   "steps": 50}}
    )
    assert job.spec.levels == 1 and job.spec.lr_decay == 0.997


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"L": 24, "kappa": 0.25, "lam": 0.01}, "L=24 is not 8·2^n"),
        ({"L": 8, "kappa": 0.25, "lam": -1.0}, "lam"),
        ({"L": 8, "kappa": 0.3, "lam": 0.0}, "kappa=0.3"),
        ({"L": 8, "kappa": 0.2, "lam": 0.01, "method": "xy"}, "method"),
        ({"L": 8, "kappa": 0.2, "lam": 0.01, "colour": 1}, "colour"),
    ],
)
def test_bad_train_specs_name_the_field(spec: dict, needle: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(needle)):
        TrainSpec.model_validate({"method": "ir", **spec})


def test_levels() -> None:
    assert TrainSpec(L=64, kappa=0.2, lam=0.01, coarse_L=4).levels == 4
    assert TrainSpec(L=64, kappa=0.2, lam=0.01).levels == 3  # default coarse_L 8 at L ≥ 16
    assert TrainSpec(L=24, kappa=0.2, lam=0.01, method="baseline").levels == 0


@pytest.mark.parametrize("kind", ["hmc", "train"])
def test_seed_beyond_the_documented_range_names_the_field(kind: str) -> None:
    """A seed ≥ 2³² would overflow the per-stream seeds (seed·7919 + i) and, past 2⁶³, the
    registry's BIGINT column: refused at validation, naming the field."""
    spec: dict[str, object] = {"dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "seed": 2**32}
    if kind == "hmc":
        spec["n_samples"] = 100
    with pytest.raises(ValidationError) as err:
        adapter.validate_python({"kind": kind, "spec": spec})
    assert any(e["loc"][-1] == "seed" for e in err.value.errors())
    spec["seed"] = 2**32 - 1
    assert adapter.validate_python({"kind": kind, "spec": spec}).spec.seed == 2**32 - 1


def test_coarse_lattice_default_follows_the_measurements() -> None:
    """IR in d = 2 starts from 8×8 at L ≥ 16 (bench/scaling.py: 0.867 against 0.699 from
    4×4 at L = 16 in 15 min, 0.412 against 0.307 at L = 32 in 30 min); L = 8, UV, d ≠ 2,
    warm starts (the registry's models are 4×4) and an explicit coarse_L keep theirs. The
    filled-in value is stored on the spec, so a job records what it ran."""
    base = {"kind": "train", "spec": {"dim": 2, "kappa": 0.25, "lam": 0.01}}

    def coarse(**kw: object) -> int:
        job = adapter.validate_python({**base, "spec": {**base["spec"], **kw}})
        assert job.spec.model_dump()["coarse_L"] == job.spec.coarse_L
        return int(job.spec.coarse_L)

    assert [coarse(L=L) for L in (8, 16, 32, 64, 128)] == [4, 8, 8, 8, 8]
    assert coarse(L=32, init_from="nearest") == 4 and coarse(L=32, init_from="m/1") == 4
    assert coarse(L=32, method="uv") == 4 and coarse(L=32, dim=1) == 4
    assert coarse(L=32, coarse_L=4) == 4 and coarse(L=32, coarse_L=None) == 8
    assert TrainSpec(L=64, kappa=0.25, lam=0.01).levels == 3


def test_kernel_default_follows_the_measurements() -> None:
    """k = 7 in d = 2 from an 8×8 coarse lattice (bench/scaling.py: 0.761 against 0.471 at
    L = 32 in 30 min, 0.932 against 0.867 at L = 16 in 15 min), else k = 5 where the first
    fine lattice holds it, k = 3 in d = 3. It depends on coarse_L only, so every stage of a
    grown stack (same coarse_L, smaller L) builds the same levels."""
    from dataclasses import replace

    from core.jobs.specs import default_kernel_size
    from core.jobs.train_plan import train_plan
    from core.physics.training.plan import flow_config

    assert [default_kernel_size(2, c) for c in (2, 4, 8, 16)] == [3, 5, 7, 7]
    assert default_kernel_size(1, 8) == 5 and default_kernel_size(3, 8) == 3
    kernels = {L: flow_config(train_plan(TrainSpec(L=L, kappa=0.25, lam=0.01))).kernel_size
               for L in (8, 16, 32, 64)}
    assert kernels == {8: 5, 16: 7, 32: 7, 64: 7}
    stage = replace(train_plan(TrainSpec(L=64, kappa=0.25, lam=0.01)), L=16)
    assert flow_config(stage).kernel_size == 7
    with pytest.raises(ValueError, match="kernel_size=7 is wider"):
        TrainSpec(L=16, coarse_L=2, kappa=0.25, lam=0.01, kernel_size=7)

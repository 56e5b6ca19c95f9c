"""``coarse_sampler`` in SampleSpec and ScanSpec: hmc by default, cluster
on request; a scan that cannot use it (baseline, odd coarse_L) is refused naming the field."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.jobs.scan_spec import ScanSpec
from core.jobs.specs import SampleSpec


def test_default_is_hmc_and_a_scan_passes_its_choice_on() -> None:
    assert SampleSpec(model="m", n_samples=1).coarse_sampler == "hmc"
    scan = ScanSpec(L=8, kappa=[0.2, 0.25], coarse_sampler="cluster")
    assert scan.sample_spec(1, "m").coarse_sampler == "cluster"
    assert ScanSpec(L=8, kappa=[0.2]).sample_spec(0, "m").coarse_sampler == "hmc"


@pytest.mark.parametrize(("extra", "needle"), [
    ({"coarse_sampler": "wolff"}, "'hmc' or 'cluster'"),
    ({"method": "baseline", "coarse_sampler": "cluster"}, "a baseline model has no coarse"),
    ({"L": 12, "coarse_L": 3, "coarse_sampler": "cluster"}, "coarse_L=3 is odd"),
])
def test_scan_refuses_an_unusable_coarse_sampler(extra: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        ScanSpec.model_validate({"L": 8, "kappa": [0.2], **extra})
    assert needle in str(err.value)
    assert "coarse_sampler" in str(err.value)

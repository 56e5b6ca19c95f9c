"""Cancelling a sampling job stops between proposal chunks, for the baseline flow too."""

from __future__ import annotations

import pytest
import torch

from core.physics.control import SamplingCancelled
from core.physics.exact.sampler import draw_baseline
from core.physics.flows.architecture import FieldConfig
from core.physics.flows.baseline import BaselineFlow
from core.physics.flows.solver import SolverConfig
from core.physics.lattice.couplings import Couplings


def test_draw_baseline_honours_should_stop() -> None:
    field = FieldConfig(1, None, n_freq=3, n_time=2, bond_freq=2, bond_time=2)
    flow = BaselineFlow(field, 4, SolverConfig(steps=2))
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the first chunk through, stop before the second

    fine = Couplings(kappa=0.2, lam=0.02)
    with pytest.raises(SamplingCancelled, match="after 4 proposals"):
        draw_baseline(flow, 12, fine, torch.Generator().manual_seed(0), chunk=4,
                      should_stop=stop)
    props = draw_baseline(flow, 6, fine, torch.Generator().manual_seed(0), chunk=4,
                          should_stop=lambda: False)
    assert props.phi.shape == (6, 4)

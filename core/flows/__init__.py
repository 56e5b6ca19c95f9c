"""Super-resolving and baseline normalising flows (paper Section IV).

Imports are lazy so that ``core.flows.config`` (pure pydantic, used by the API process to
validate uploads) can be imported without pulling in torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FlowConfig": "core.flows.config",
    "parameter_shapes": "core.flows.config",
    "SolverConfig": "core.flows.cnf",
    "CNF": "core.flows.cnf",
    "BlockNoise": "core.flows.noise",
    "ConditionalBlockNoise": "core.flows.conditional_noise",
    "HollowVectorField": "core.flows.hollow_field",
    "upsample": "core.flows.upsample",
    "downsample": "core.flows.upsample",
    "SuperResolvingLevel": "core.flows.rg_flow",
    "SuperResolvingFlow": "core.flows.rg_flow",
    "FlowSample": "core.flows.rg_flow",
    "FlowInverse": "core.flows.rg_flow",
    "build_flow": "core.flows.rg_flow",
    "BaselineFlow": "core.flows.baseline",
    "BaselineSample": "core.flows.baseline",
    "BaselineInverse": "core.flows.baseline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'core.flows' has no attribute {name!r}")

"""Flow files for upload tests, written with numpy safetensors (no torch needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from core.physics.flows.config import FlowConfig, parameter_dtypes, parameter_shapes

CONFIG: dict[str, Any] = {
    "kind": "super_resolving", "dim": 2, "coarse_L": 4, "fine_L": 8, "levels": 1,
    "kernel_size": 2, "n_freq": 3, "n_time": 2, "bond_freq": 4, "bond_time": 4,
    "dtype": "float32", "theory": {"kappa": 0.25, "lam": 0.01}, "method": "ir", "seed": 0,
}
COUPLINGS = {"coarse_kappa": 0.24, "coarse_lam": 0.011, "fine_kappa": 0.25, "fine_lam": 0.01}


def tensors_for(config: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    cfg = FlowConfig.model_validate(config)
    rng = np.random.default_rng(seed)
    dtypes = parameter_dtypes(cfg)
    out = {}
    for name, shape in parameter_shapes(cfg).items():
        if name.startswith("couplings."):
            out[name] = np.array(COUPLINGS[name.split(".", 1)[1]], dtype=np.float64)
        else:
            out[name] = np.asarray(0.01 * rng.standard_normal(shape), dtype=dtypes[name])
    return out


def write_flow(d: Path, config: dict[str, Any] | None = None,
               tensors: dict[str, np.ndarray] | None = None,
               metrics: dict[str, Any] | None = None) -> Path:
    config = dict(config or CONFIG)
    d.mkdir(parents=True, exist_ok=True)
    save_file(tensors if tensors is not None else tensors_for(config),
              str(d / "model.safetensors"), metadata={"format": "srflow-flow"})
    (d / "config.json").write_text(json.dumps(config))
    (d / "metrics.json").write_text(json.dumps(metrics or {"ess": 0.5, "curve": [{"step": 1}]}))
    return d


def files_of(d: Path) -> dict[str, Path]:
    return {p.name: p for p in d.iterdir()}

"""Untrained flows written by the library (build_flow + save_flow), for tests that need a
model directory without training one."""

from __future__ import annotations

from pathlib import Path

from core.physics.flows.config import FlowConfig
from core.physics.flows.rg_flow import build_flow
from core.physics.io.flow_files import save_flow

COUPLINGS = {"coarse_kappa": 0.22, "coarse_lam": 0.01, "fine_kappa": 0.25, "fine_lam": 0.01}


def untrained_flow(d: Path, kind: str = "super_resolving", coarse_L: int = 4,
                   fine_L: int = 8) -> Path:
    """An untrained flow written by the library (build_flow + save_flow)."""
    sr = kind == "super_resolving"
    cfg = FlowConfig(
        kind=kind, dim=2, fine_L=fine_L, coarse_L=coarse_L if sr else None,
        levels=1 if sr else 0, kernel_size=3 if sr else None, n_freq=3, n_time=2,
        bond_freq=2, bond_time=2, dtype="float64", theory=dict(kappa=0.25, lam=0.01),
        method="ir" if sr else "baseline", seed=0,
    )  # type: ignore[arg-type]  # fmt: skip
    return save_flow(d, build_flow(cfg), cfg, COUPLINGS)

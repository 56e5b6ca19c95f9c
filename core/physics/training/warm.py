"""Warm starts: seed a new run with a parent model's trained levels and couplings.

A super-resolving level T = F∘N∘U does not depend on the lattice size (paper Appendix A:
the noise acts per block and the kernel has a fixed size), so a stack trained on
coarse_L → L seeds a stack coarse_L → L' level by level: level i of the child takes level
i of the parent; levels beyond the parent's copy its last (finest) trained level. The
architecture must match — every FlowConfig field that shapes a level's function (kind, d,
coarse_L, k, F, D, F', D'; the baseline also its lattice size). Solver and dtype may
differ (weights are converted; the child's solver is the plan's). A job that leaves the
kernel open takes the parent's (:func:`parent_kernel_size`, read by core.jobs.train_plan).

The learnable couplings start at the parent's learned values when the parent was trained
with the same method (IR: κ_L, λ_L; UV: κ, λ of the fine side); fixed couplings are the
plan's. σ_θ is part of the level's weights, so a warm start keeps the trained σ instead of
re-initialising it from the coarse std (Appendix C applies to fresh runs only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.physics.flows.config import FlowConfig
from core.physics.io.flow_files import FlowFileError, load_flow, read_config
from core.physics.lattice.couplings import Couplings
from core.physics.training.couplings import LearnableCouplings
from core.physics.training.plan import TrainPlan, flow_config

ARCHITECTURE = ("kind", "dim", "coarse_L", "kernel_size", "n_freq", "n_time", "bond_freq",
                "bond_time", "learn_prior_sigma", "field", "base", "hollow_channels",
                "hollow_hidden")


class WarmStartError(ValueError):
    """The parent model cannot seed the requested flow (one line: what differs)."""


@dataclass
class WarmStart:
    """A loaded parent: its flow module, config and flat couplings; ``parent`` is what the
    child's config records."""

    flow: nn.Module
    config: FlowConfig
    couplings: dict[str, float]
    parent: str


def flat_couplings(coarse: Couplings, fine: Couplings) -> dict[str, float]:
    """The flow-file coupling record (core.physics.flows.config.COUPLING_KEYS)."""
    return {"coarse_kappa": float(coarse.kappa), "coarse_lam": float(coarse.lam),
            "fine_kappa": float(fine.kappa), "fine_lam": float(fine.lam)}


def nested_couplings(flat: dict[str, float]) -> dict[str, Couplings]:
    """{"coarse": Couplings, "fine": Couplings} from a flow-file coupling record."""
    return {side: Couplings(kappa=float(flat[f"{side}_kappa"]), lam=float(flat[f"{side}_lam"]))
            for side in ("coarse", "fine")}


def _architecture(config: FlowConfig) -> dict[str, Any]:
    arch = {k: getattr(config, k) for k in ARCHITECTURE}
    if config.kind == "baseline":
        arch["fine_L"] = config.fine_L
    return arch


def check_compatible(parent: FlowConfig, child: FlowConfig) -> None:
    """Raise :class:`WarmStartError` naming the first architecture field that differs."""
    a, b = _architecture(parent), _architecture(child)
    for key in a:
        if a[key] != b[key]:
            raise WarmStartError(
                f"init model has {key}={a[key]!r} but this run needs {key}={b[key]!r}: "
                f"a warm start needs the same architecture (only fine_L/levels may differ)")


def parent_kernel_size(model_dir: Path | None) -> int | None:
    """The kernel size k of the parent model in ``model_dir`` (config.json only, no
    tensors); None without a parent, for a parent without one (a baseline) or one that
    cannot be read (:func:`load_warm_start` reports that). A job that names no kernel takes
    its parent's, not the default for its coarse_L: a registry model trained before the
    default changed (k = 5 at coarse_L = 8 before the default became k = 7) still seeds such a
    child."""
    if model_dir is None:
        return None
    try:
        return read_config(model_dir).kernel_size
    except FlowFileError:
        return None


def load_warm_start(model_dir: Path, plan: TrainPlan) -> WarmStart:
    """Load ``model_dir`` (core.physics.io.flow_files) and check it against the plan's flow."""
    if not (model_dir / "config.json").is_file():
        raise WarmStartError(f"init model {str(model_dir)!r}: no config.json there")
    loaded = load_flow(model_dir)
    check_compatible(loaded.config, flow_config(plan))
    return WarmStart(flow=loaded.flow, config=loaded.config, couplings=dict(loaded.couplings),
                     parent=str(model_dir))


def apply_warm_start(init: WarmStart, flow: nn.Module, coarse: LearnableCouplings,
                     fine: LearnableCouplings) -> None:
    """Copy the parent's weights into ``flow`` (level by level) and its learned couplings
    into the learnable ones of ``coarse``/``fine`` (same method only)."""
    parent: Any = init.flow
    child: Any = flow
    with torch.no_grad():
        if hasattr(child, "levels"):
            for i, level in enumerate(child.levels):
                src = parent.levels[min(i, len(parent.levels) - 1)]
                level.load_state_dict(_converted(src.state_dict(), level))
        else:
            child.load_state_dict(_converted(parent.state_dict(), child))
        if init.config.method == _method(coarse, fine):
            values = nested_couplings(init.couplings)
            for side, learn in (("coarse", coarse), ("fine", fine)):
                for name in learn.learnable:
                    getattr(learn, name).fill_(getattr(values[side], name))


def _method(coarse: LearnableCouplings, fine: LearnableCouplings) -> str:
    if coarse.learnable:
        return "ir"
    return "uv" if fine.learnable else "baseline"


def _converted(state: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    ref = target.state_dict()
    return {k: v.to(dtype=ref[k].dtype) if k in ref else v for k, v in state.items()}

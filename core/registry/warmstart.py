"""Warm start: the visible model version closest to a train spec with the same architecture.

"Same architecture" means the same trainable tensors per level: method, d, coarse_L,
kernel size (any, when the spec leaves it unset: the child takes its parent's), F, D, F',
D' and dtype (the fine size L may differ: a level's map does not
depend on L, so a flow trained on a smaller lattice seeds a larger one). "Closest" is the
Euclidean distance in (κ, λ) at equal d; ties go to the higher ESS/N, then the newer
version. The defaults mirror :func:`core.physics.training.api.flow_config` (a registry test pins
them against it).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.jobs.specs import default_kernel_size
from core.registry.jobs import visible_to
from core.registry.keys import Caller
from core.registry.models import ModelVersion, RegisteredModel

ARCH_KEYS = ("method", "dim", "coarse_L", "kernel_size", "n_freq", "n_time", "bond_freq",
             "bond_time", "dtype", "field", "base")
OLD_CONFIG_DEFAULTS = {"field": "paper", "base": "plain"}  # config.json before these keys


class NoParent(LookupError):
    """No visible version has the spec's architecture."""


def arch_of_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Architecture a train spec (as stored on the job) implies."""
    method = spec.get("method", "ir")
    base = method == "baseline"
    return {
        "method": method,
        "dim": spec.get("dim", 2),
        "coarse_L": None if base else spec.get("coarse_L", 4),
        "kernel_size": None if base else (
            spec.get("kernel_size") or default_kernel_size(spec.get("dim", 2),
                                                           spec.get("coarse_L", 4))),
        "n_freq": spec.get("n_freq") or (30 if base else 11),
        "n_time": spec.get("n_time", 10),
        "bond_freq": spec.get("bond_freq", 20),
        "bond_time": spec.get("bond_time", 20),
        "dtype": spec.get("dtype", "float32"),
        "field": spec.get("field", "paper"),
        "base": spec.get("base", "plain"),
    }


def arch_of_config(config: dict[str, Any]) -> dict[str, Any]:
    """Architecture recorded in a version's config.json."""
    return {k: config.get(k, OLD_CONFIG_DEFAULTS.get(k)) for k in ARCH_KEYS}


def distance(spec: dict[str, Any], mv: ModelVersion) -> float:
    if mv.dim != spec.get("dim", 2):
        return math.inf
    return math.hypot(mv.kappa - float(spec["kappa"]), mv.lam - float(spec["lam"]))


def nearest_version(session: Session, spec: dict[str, Any], caller: Caller) -> ModelVersion:
    """The closest visible version with the same architecture (NoParent if none)."""
    want = arch_of_spec(spec)
    stmt = (select(ModelVersion).join(RegisteredModel)  # named in the job's spec: its model
            .where(visible_to(ModelVersion, caller),      # must answer the caller too
                   visible_to(RegisteredModel, caller),
                   ModelVersion.dim == want["dim"], ModelVersion.method == want["method"]))
    best: tuple[float, float, int] | None = None
    chosen: ModelVersion | None = None
    any_kernel = not spec.get("kernel_size")  # unset: the parent's (training.warm)
    for mv in session.scalars(stmt):
        have = arch_of_config(mv.config or {})
        if any_kernel:
            have = {**have, "kernel_size": want["kernel_size"]}
        if have != want:
            continue
        if spec.get("L") is not None and int(mv.L) > int(spec["L"]):
            continue  # a parent has at most the levels of the child
        key = (distance(spec, mv), -(mv.ess or 0.0), -mv.id)
        if best is None or key < best:
            best, chosen = key, mv
    if chosen is None:
        raise NoParent(f"init_from='nearest': no model version you can see has this "
                       f"architecture ({', '.join(f'{k}={v}' for k, v in want.items())}); "
                       "train one from scratch first, or name a parent as NAME/VERSION")
    return chosen

"""What a finished job's files say about themselves: registry fields and HDF5 stamps.

Reads config.json / metrics.json / HDF5 attributes defensively (a missing figure is
recorded as null, never invented) and falls back to the job's spec for the theory.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core import __version__
from core.registry.models import ACTION_CONVENTION, Job, ModelVersion


def _first(sources: list[dict[str, Any]], *keys: str) -> Any:
    for src in sources:
        for key in keys:
            if isinstance(src, dict) and src.get(key) is not None:
                return src[key]
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_attrs(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if "configs" in f:
            attrs["_n"] = int(f["configs"].shape[0])
    return attrs


def stamp_hdf5(path: Path, job: Job, ensemble_id: str, mv: ModelVersion | None) -> None:
    """Name the job, the ensemble and (for sample jobs) the model version in the file."""
    with h5py.File(path, "a") as f:
        f.attrs["srflow_job_id"] = job.id
        f.attrs["srflow_job_kind"] = job.kind
        f.attrs["srflow_ensemble_id"] = ensemble_id
        if mv is not None:
            f.attrs["model_name"] = mv.model.name
            f.attrs["model_version"] = mv.version
            f.attrs["model_ref"] = f"{mv.model.name}/{mv.version}"
            f.attrs["model_sha256"] = mv.sha256


def ensemble_fields(
    job: Job, path: Path, summary: dict[str, Any], mv: ModelVersion | None
) -> dict[str, Any]:
    attrs = read_attrs(path)
    theory = summary.get("theory") if isinstance(summary.get("theory"), dict) else {}
    spec = job.spec
    base = {"dim": mv.dim, "L": mv.L, "kappa": mv.kappa, "lam": mv.lam} if mv else {}
    sources = [attrs, theory or {}, spec, base]
    return {
        "model_version_id": mv.id if mv is not None else None,
        "dim": int(_first(sources, "dim", "d")),
        "L": int(_first(sources, "L")),
        "kappa": float(_first(sources, "kappa")),
        "lam": float(_first(sources, "lam")),
        "n": int(_first([attrs, summary, spec], "_n", "n_samples", "n")),
        "summary": summary,
    }


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_fields(job: Job, mdir: Path, summary: dict[str, Any], wall: float) -> dict[str, Any]:
    config = _load_json(mdir / "config.json")
    metrics = _load_json(mdir / "metrics.json")
    spec = job.spec
    raw_theory = config.get("theory")
    theory: dict[str, Any] = raw_theory if isinstance(raw_theory, dict) else {}
    srcs = [metrics, summary, config]
    couplings = _first(srcs, "couplings", "learned_couplings") or {}
    curve = _first([metrics, summary], "curve", "history") or []
    return {
        "dim": int(_first([theory, config, spec], "dim", "d")),
        "L": int(_first([theory, config, spec], "L")),
        "kappa": float(_first([theory, config, spec], "kappa")),
        "lam": float(_first([theory, config, spec], "lam")),
        "action": ACTION_CONVENTION,
        "method": str(_first([config, spec], "method")),
        "config": config,
        "couplings": couplings if isinstance(couplings, dict) else {"values": couplings},
        "ess": _first(srcs, "ess", "ess_per_n", "final_ess"),
        "acceptance": _first(srcs, "acceptance"),
        "curve": curve if isinstance(curve, list) else [],
        "metrics": {k: v for k, v in metrics.items() if k not in ("curve", "history")},
        "seed": spec.get("seed"),
        "code_version": _first([config], "code_version") or __version__,
        "torch_version": _first([config], "torch_version") or _version("torch"),
        "torchdiffeq_version": _first([config], "torchdiffeq_version") or _version("torchdiffeq"),
        "device": _first([config], "device") or spec.get("device"),
        "wall_time_s": _first([metrics, summary], "wall_time_s", "seconds") or wall,
        "parent": spec.get("init_from") or _first([config], "parent"),  # registry ref first
    }

"""Flow files: ``model.safetensors`` + ``config.json`` + ``metrics.json`` (DESIGN §7).

Never pickles: weights go through safetensors only (no ``torch.load``), the config through
pydantic (:class:`core.physics.flows.config.FlowConfig`), metrics through ``json``. Loading an
untrusted upload therefore cannot execute code, and every tensor is checked by name,
shape and dtype against :func:`core.physics.flows.config.parameter_shapes` before the model is
built. Writes are atomic: a temporary sibling directory is filled, fsynced and renamed.

Tensor names: ``flow.<state_dict key>`` (config.dtype) and the learned couplings
``couplings.{coarse,fine}_{kappa,lam}`` as 0-d float64 tensors.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from core.physics.flows.config import COUPLING_KEYS, FlowConfig, parameter_dtypes, parameter_shapes
from core.physics.flows.rg_flow import build_flow

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
FILES = (MODEL_FILE, CONFIG_FILE, METRICS_FILE)
_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


class FlowFileError(ValueError):
    """A flow directory that cannot be trusted; the message names the file and tensor."""


@dataclass(frozen=True)
class LoadedFlow:
    """A rebuilt flow with its config, learned couplings and recorded metrics."""

    flow: nn.Module
    config: FlowConfig
    couplings: dict[str, float]
    metrics: dict[str, Any]


def _coupling_name(key: str) -> str:
    return key.removeprefix("couplings.")


def save_flow(
    directory: str | os.PathLike[str],
    flow: nn.Module,
    config: FlowConfig,
    couplings: dict[str, float],
    metrics: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the three files into ``directory`` atomically and return its path.

    ``couplings`` needs the keys coarse_kappa, coarse_lam, fine_kappa, fine_lam.
    """
    target = Path(directory)
    names = {_coupling_name(k) for k in COUPLING_KEYS}
    if set(couplings) != names:
        raise ValueError(
            f"couplings must have exactly the keys {sorted(names)}, got {sorted(couplings)}"
        )
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    dtype = torch.float32 if config.dtype == "float32" else torch.float64
    tensors = {
        f"flow.{k}": v.detach().to("cpu", dtype).contiguous() for k, v in flow.state_dict().items()
    }
    for name in names:
        tensors[f"couplings.{name}"] = torch.tensor(float(couplings[name]), dtype=torch.float64)
    _check_tensors(
        {k: (tuple(v.shape), _DTYPES.get(v.dtype, str(v.dtype))) for k, v in tensors.items()},
        config,
        "flow to save",
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_file(tensors, str(tmp / MODEL_FILE), metadata={"format": "srflow-flow"})
        (tmp / CONFIG_FILE).write_text(config.model_dump_json(indent=2))
        (tmp / METRICS_FILE).write_text(json.dumps(metrics or {}, indent=2, allow_nan=True))
        for name in FILES:
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            try:
                os.replace(target, old / "x")
                try:
                    os.replace(tmp, target)
                except BaseException:
                    os.replace(old / "x", target)  # put the previous model back
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_tensors(
    found: dict[str, tuple[tuple[int, ...], str]], config: FlowConfig, where: str
) -> None:
    shapes, dtypes = parameter_shapes(config), parameter_dtypes(config)
    missing = sorted(set(shapes) - set(found))
    extra = sorted(set(found) - set(shapes))
    if missing:
        raise FlowFileError(f"{where}: tensor {missing[0]!r} is missing ({len(missing)} missing)")
    if extra:
        raise FlowFileError(f"{where}: unexpected tensor {extra[0]!r} ({len(extra)} unexpected)")
    for name, (shape, dtype) in found.items():
        if shape != shapes[name]:
            raise FlowFileError(
                f"{where}: tensor {name!r} has shape {shape}, config needs {shapes[name]}"
            )
        if dtype != dtypes[name]:
            raise FlowFileError(
                f"{where}: tensor {name!r} has dtype {dtype}, config needs {dtypes[name]}"
            )


def read_config(directory: str | os.PathLike[str]) -> FlowConfig:
    """Parse and validate ``config.json`` alone (no weights)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FlowFileError(f"{path}: file missing")
    try:
        return FlowConfig.model_validate_json(path.read_text())
    except (ValidationError, UnicodeDecodeError) as exc:
        raise FlowFileError(f"{path}: invalid flow config: {exc}") from exc


def load_flow(directory: str | os.PathLike[str], device: str | torch.device = "cpu") -> LoadedFlow:
    """Validate and rebuild a saved flow; raises :class:`FlowFileError` on any mismatch."""
    root = Path(directory)
    for name in FILES:
        if not (root / name).is_file():
            raise FlowFileError(f"{root / name}: file missing")
    config = read_config(root)
    try:
        metrics = json.loads((root / METRICS_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FlowFileError(f"{root / METRICS_FILE}: invalid JSON: {exc}") from exc
    if not isinstance(metrics, dict):
        raise FlowFileError(f"{root / METRICS_FILE}: expected a JSON object")
    model_path = root / MODEL_FILE
    try:
        with safe_open(str(model_path), framework="pt") as fh:
            found = {}
            for key in fh.keys():
                info = fh.get_slice(key)
                found[key] = (tuple(info.get_shape()), _safetensors_dtype(info.get_dtype()))
            _check_tensors(found, config, str(model_path))
            tensors = {key: fh.get_tensor(key) for key in found}
    except SafetensorError as exc:
        raise FlowFileError(f"{model_path}: not a valid safetensors file: {exc}") from exc
    for key, value in tensors.items():
        if not bool(torch.isfinite(value).all()):
            raise FlowFileError(f"{model_path}: tensor {key!r} has non-finite values")
    couplings = {_coupling_name(k): float(tensors[k]) for k in COUPLING_KEYS}
    if not all(math.isfinite(v) for v in couplings.values()):  # pragma: no cover - checked above
        raise FlowFileError(f"{model_path}: non-finite couplings")
    flow = build_flow(config)
    state = {k.removeprefix("flow."): v for k, v in tensors.items() if k.startswith("flow.")}
    flow.load_state_dict(state, strict=True)
    return LoadedFlow(flow=flow.to(device), config=config, couplings=couplings, metrics=metrics)


def _safetensors_dtype(code: str) -> str:
    return {"F32": "float32", "F64": "float64"}.get(code, code)

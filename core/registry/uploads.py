"""Validation of an uploaded flow, before anything is stored — no torch, never unpickled.

A flow is ``model.safetensors`` + ``config.json`` (+ optional ``metrics.json``, a model
card ``README.md`` and the ``registry.json`` a download carries). Checks, in order:

1. only those file names (pickles, ``.pt``/``.bin`` checkpoints and anything else refused);
2. ``config.json`` against :class:`core.physics.flows.config.FlowConfig` (unknown fields refused)
   and the sizes it declares against :func:`core.registry.upload_limits.check_declared`
   (architecture caps, total parameter count) — closed form, before any tensor is read;
3. safetensors: 8-byte little-endian header length N ≤ MAX_HEADER, a JSON header of N
   bytes, each tensor's dtype (F32/F64), shape and ``data_offsets`` — contiguous from 0,
   ending exactly at the end of the file, and of size prod(shape)·itemsize;
4. every tensor's name, shape and dtype against :func:`core.physics.flows.config.parameter_shapes`
   (nothing missing, nothing extra);
5. ``registry.json`` (from a download), if present, must name the same weights' sha256.

Every failure is an :class:`UploadError` naming the file and field; every JSON file (and
the safetensors header) is checked for size and nesting depth before it is parsed
(:mod:`core.registry.upload_limits`).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.physics.flows.config import FlowConfig, parameter_dtypes, parameter_shapes
from core.registry.upload_limits import (
    MAX_CARD,
    MAX_CONFIG_JSON,
    MAX_HEADER,
    MAX_JSON,
    UploadError,
    check_declared,
    check_json_depth,
    check_json_size,
)

__all__ = ["UploadError", "ValidatedFlow", "check_name", "read_safetensors", "validate_flow"]

ALLOWED = ("model.safetensors", "config.json", "metrics.json", "README.md", "registry.json")
REQUIRED = ("model.safetensors", "config.json")
STORED = {"model.safetensors": "model.safetensors", "config.json": "config.json",
          "metrics.json": "metrics.json", "README.md": "card.md"}
DTYPES = {"F32": ("float32", 4), "F64": ("float64", 8)}
PICKLE_HINT = ("pickled files are refused (they can run code when loaded): save the weights "
               "with safetensors (safetensors.torch.save_file) as model.safetensors")


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # float32 | float64
    shape: tuple[int, ...]
    begin: int  # byte offset of the data in the file
    end: int


@dataclass(frozen=True)
class SafetensorsInfo:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]


@dataclass
class ValidatedFlow:
    """A flow that passed every check; ``paths`` are the local files to store."""

    config: FlowConfig
    config_json: dict[str, Any]
    weights: SafetensorsInfo
    couplings: dict[str, dict[str, float] | None]
    metrics: dict[str, Any]
    sha256: str
    paths: dict[str, Path] = field(default_factory=dict)  # stored name → file
    source: dict[str, Any] | None = None  # registry.json of a download


def _looks_pickled(head: bytes) -> str | None:
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "this is a Python pickle (torch.save). " + PICKLE_HINT
    if head[:2] == b"PK":
        return "this is a zip archive (a torch.save checkpoint?). " + PICKLE_HINT
    return None


def check_name(name: str) -> None:
    if name not in ALLOWED:
        low = name.lower()
        if low.endswith((".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib")):
            raise UploadError(name, PICKLE_HINT)
        raise UploadError(name, f"unexpected file: an upload holds only {', '.join(ALLOWED)}")


def read_safetensors(path: Path) -> SafetensorsInfo:
    """Parse and check the header of ``path`` without reading the tensor data."""
    f_name = "model.safetensors"
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        hint = _looks_pickled(head)
        if hint:
            raise UploadError(f_name, hint)
        if len(head) < 8:
            raise UploadError(f_name, f"truncated: {size} bytes, not even the 8-byte header "
                              "length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise UploadError(f_name, f"truncated or not safetensors: header length {n} but "
                              f"the file has {size} bytes")
        raw = f.read(n)
    check_json_depth(f_name, raw)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UploadError(f_name, "the header is not JSON: not a safetensors file") from None
    if not isinstance(header, dict):
        raise UploadError(f_name, "the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise UploadError(f_name, "__metadata__ must map strings to strings")
    data_len = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    spans = []
    for name, t in header.items():
        where = f"{f_name}:{name}"
        if not isinstance(t, dict) or set(t) != {"dtype", "shape", "data_offsets"}:
            raise UploadError(where, "each tensor needs exactly dtype, shape, data_offsets")
        if t["dtype"] not in DTYPES:
            raise UploadError(where, f"dtype {t['dtype']!r} is not allowed: use F32 or F64")
        shape, offs = t["shape"], t["data_offsets"]
        if (not isinstance(shape, list) or
                not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                        for d in shape)):
            raise UploadError(where, f"shape {shape!r} is not a list of non-negative integers")
        if (not isinstance(offs, list) or len(offs) != 2 or
                not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise UploadError(where, "data_offsets must be [begin, end]")
        dtype, itemsize = DTYPES[t["dtype"]]
        begin, end = offs
        if not 0 <= begin <= end <= data_len:
            raise UploadError(where, f"data_offsets {offs} lie outside the {data_len} data "
                              "bytes: the file is truncated or corrupt")
        if end - begin != math.prod(shape) * itemsize:
            raise UploadError(where, f"data_offsets {offs} hold {end - begin} bytes but shape "
                              f"{shape} in {dtype} needs {math.prod(shape) * itemsize}")
        tensors[name] = TensorInfo(dtype, tuple(shape), 8 + n + begin, 8 + n + end)
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise UploadError(f"{f_name}:{name}", f"data is not contiguous: expected offset "
                              f"{pos}, found {begin} (overlapping or a gap)")
        pos = end
    if pos != data_len:
        raise UploadError(f_name, f"the tensors cover {pos} of {data_len} data bytes: the "
                          "file has trailing bytes or is truncated")
    return SafetensorsInfo(tensors, {str(k): v for k, v in meta.items()})


def read_scalar(path: Path, t: TensorInfo) -> float:
    with path.open("rb") as f:
        f.seek(t.begin)
        raw = f.read(t.end - t.begin)
    return float(struct.unpack("<d" if t.dtype == "float64" else "<f", raw)[0])


def _json_file(path: Path, name: str, limit: int = MAX_JSON) -> dict[str, Any]:
    if path.stat().st_size > limit:
        raise UploadError(name, f"larger than {limit} bytes")
    raw = path.read_bytes()
    if _looks_pickled(raw[:2]):
        raise UploadError(name, PICKLE_HINT)
    check_json_size(name, raw, limit)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UploadError(name, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UploadError(name, "must be a JSON object")
    return data


def validate_config(data: dict[str, Any]) -> FlowConfig:
    try:
        return FlowConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = f"unknown field {loc!r}: this server's FlowConfig has no such field"
        elif err.get("type") == "missing":
            msg = f"{loc} is required"
        raise UploadError(f"config.json:{loc}" if loc else "config.json", msg) from None


def check_tensors(info: SafetensorsInfo, config: FlowConfig) -> None:
    """Every tensor the config implies, with its shape and dtype; nothing else."""
    shapes, dtypes = parameter_shapes(config), parameter_dtypes(config)
    missing = sorted(set(shapes) - set(info.tensors))
    extra = sorted(set(info.tensors) - set(shapes))
    if missing:
        raise UploadError("model.safetensors", f"config.json implies tensor {missing[0]!r} "
                          f"(and {len(missing) - 1} more missing)" if len(missing) > 1 else
                          f"config.json implies tensor {missing[0]!r}, which is missing")
    if extra:
        raise UploadError(f"model.safetensors:{extra[0]}", "a tensor this config.json does not "
                          "have: the weights and the config disagree")
    for name, want in shapes.items():
        t = info.tensors[name]
        if t.shape != tuple(want):
            raise UploadError(f"model.safetensors:{name}", f"shape {list(t.shape)} contradicts "
                              f"config.json, which implies {list(want)}")
        if t.dtype != dtypes[name]:
            raise UploadError(f"model.safetensors:{name}", f"dtype {t.dtype} but config.json "
                              f"implies {dtypes[name]}")


def _couplings(path: Path, info: SafetensorsInfo,
               config: FlowConfig) -> dict[str, dict[str, float] | None]:
    vals = {k.split(".", 1)[1]: read_scalar(path, t) for k, t in info.tensors.items()
            if k.startswith("couplings.")}
    for k, v in vals.items():
        if not math.isfinite(v):
            raise UploadError(f"model.safetensors:couplings.{k}", "not a finite number")
    coarse = {"kappa": vals["coarse_kappa"], "lam": vals["coarse_lam"]}
    return {"coarse": None if config.kind == "baseline" else coarse,
            "fine": {"kappa": vals["fine_kappa"], "lam": vals["fine_lam"]}}


def sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def validate_flow(files: dict[str, Path]) -> ValidatedFlow:
    """Check an upload's files (name → local path); raise UploadError on the first fault."""
    for name in files:
        check_name(name)
    for name in REQUIRED:
        if name not in files:
            raise UploadError(name, "missing: an upload needs model.safetensors and config.json")
    cfg_json = _json_file(files["config.json"], "config.json", MAX_CONFIG_JSON)
    config = validate_config(cfg_json)
    check_declared(config)  # before any tensor is read
    weights = read_safetensors(files["model.safetensors"])
    check_tensors(weights, config)
    metrics = _json_file(files["metrics.json"], "metrics.json") if "metrics.json" in files else {}
    sha = sha256_path(files["model.safetensors"])
    source = None
    if "registry.json" in files:
        source = _json_file(files["registry.json"], "registry.json")
        if source.get("sha256") not in (None, sha):
            raise UploadError("registry.json", f"names weights {source.get('sha256')} but "
                              f"model.safetensors is {sha}: the archive was altered")
    if "README.md" in files and files["README.md"].stat().st_size > MAX_CARD:
        raise UploadError("README.md", f"larger than {MAX_CARD} bytes")
    paths = {STORED[n]: p for n, p in files.items() if n in STORED}
    return ValidatedFlow(config, cfg_json, weights, _couplings(files["model.safetensors"],
                                                               weights, config),
                         metrics, sha, paths, source)

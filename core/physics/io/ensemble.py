"""Ensembles as HDF5 files (DESIGN §7).

Layout (format version 1):

- dataset ``configs`` ``(N, L, ..., L)`` with d lattice axes, chunked, gzip + shuffle;
- optional datasets (``log_q``, ``action``, ``accepted``, ...) next to it;
- every dataset carries attribute ``sha256``: the SHA-256 of its C-ordered little-endian
  bytes, so a tampered or corrupted payload is detected on read. Checksums cover data only:
  root attributes may be stamped later (e.g. job and model ids) without invalidating them;
- root attributes from :class:`EnsembleMeta` (scalars typed, dicts as JSON strings);
  ``free_energy`` (log Z ± error, f, caveats; DESIGN §10) is optional, so files written
  before it existed read unchanged;
- optional per-configuration series ``series_<name>`` and, for flow ensembles, the fresh
  proposals' ``proposal_log_w``, ``proposal_dS_dkappa``, ``proposal_dS_dlam``
  (core.physics.io.pyerrors_json exports them).

Files are written to a temporary name in the target directory, fsynced and renamed, so the
final path holds either the complete new file or whatever was there before.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core import __version__

FORMAT_VERSION = 1
_CHUNK_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PER_CONFIG = ("log_q", "action", "accepted")


class EnsembleError(ValueError):
    """An ensemble file cannot be written or read; the message names the file and the problem."""


@dataclass
class EnsembleMeta:
    """Root attributes of an ensemble file. ``None`` optionals are not stored."""

    dim: int
    L: int
    kappa: float
    lam: float
    method: str
    seeds: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    acceptance: float | None = None
    ess: float | None = None  # ESS/N of the proposals (paper eq. 12)
    thinning: int = 1
    observables: dict[str, Any] = field(default_factory=dict)
    free_energy: dict[str, Any] | None = None  # log Z, f and caveats (core.jobs.free_energy)
    model_id: str | None = None
    model_version: int | str | None = None
    code_version: str = __version__
    created: str = ""  # ISO 8601 UTC; filled in by write_ensemble when empty
    format_version: int = FORMAT_VERSION

    def to_attrs(self) -> dict[str, Any]:
        """HDF5-storable attributes: numbers typed, dicts as JSON strings."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            kind = _SCHEMA[f.name]
            attr = _ATTR_NAMES.get(f.name, f.name)
            if kind == "json":
                out[attr] = json.dumps(value, sort_keys=True, default=_json_default)
            elif kind == "int":
                out[attr] = np.int64(value)
            elif kind == "float":
                out[attr] = np.float64(value)
            elif isinstance(value, str):
                out[attr] = value
            elif kind == "int|str" and isinstance(value, int | np.integer):
                out[attr] = np.int64(value)
            else:
                raise EnsembleError(f"meta field {f.name}={value!r}: expected {kind}")
        return out

    @classmethod
    def from_attrs(cls, attrs: Any) -> EnsembleMeta:
        """Parse and type-check root attributes; raise :class:`EnsembleError` on a problem."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            attr = _ATTR_NAMES.get(f.name, f.name)
            if attr not in attrs:
                if f.name in _REQUIRED:
                    raise EnsembleError(f"missing attribute {attr!r}")
                continue
            kwargs[f.name] = _parse(attr, attrs[attr], _SCHEMA[f.name])
        return cls(**kwargs)


_SCHEMA = {
    "dim": "int",
    "L": "int",
    "kappa": "float",
    "lam": "float",
    "method": "str",
    "seeds": "json",
    "sampler": "json",
    "acceptance": "float",
    "ess": "float",
    "thinning": "int",
    "observables": "json",
    "free_energy": "json",
    "model_id": "str",
    "model_version": "int|str",
    "code_version": "str",
    "created": "str",
    "format_version": "int",
}
_ATTR_NAMES = {"dim": "d", "sampler": "sampler_settings", "ess": "ess_fraction"}
_REQUIRED = ("dim", "L", "kappa", "lam", "method", "code_version", "created", "format_version")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parse(name: str, value: Any, kind: str) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    is_int = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if kind in ("int", "int|str") and is_int:
        return int(value)
    if kind in ("str", "int|str") and isinstance(value, str):
        return value
    if kind == "float" and isinstance(value, float | np.floating):
        return float(value)
    if kind == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise EnsembleError(f"attribute {name!r} is not valid JSON: {exc}") from exc
    raise EnsembleError(f"attribute {name!r} has type {type(value).__name__}, expected {kind}")


@dataclass(frozen=True)
class WrittenEnsemble:
    """Where an ensemble was written, the SHA-256 of the file's bytes and its size."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Ensemble:
    """An ensemble read back: configs ``(N, L, ..., L)``, metadata and optional datasets."""

    configs: np.ndarray
    meta: EnsembleMeta
    extras: dict[str, np.ndarray]


def array_sha256(a: np.ndarray) -> str:
    """SHA-256 of the C-ordered little-endian bytes of an array."""
    a = np.ascontiguousarray(a)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return hashlib.sha256(a.tobytes()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_dataset(h5: h5py.File, name: str, data: np.ndarray) -> None:
    per_item = max(1, data[:1].nbytes)
    chunks = None
    if data.ndim and data.shape[0] > 0:
        chunks = (min(data.shape[0], max(1, _CHUNK_BYTES // per_item)), *data.shape[1:])
    ds = h5.create_dataset(
        name, data=data, chunks=chunks, compression="gzip" if chunks else None,
        compression_opts=1 if chunks else None, shuffle=bool(chunks),
    )  # fmt: skip
    ds.attrs["sha256"] = array_sha256(data)


def _check_inputs(path: Path, configs: np.ndarray, meta: EnsembleMeta, extras: dict) -> None:
    expected = (meta.dim + 1, (meta.L,) * meta.dim)
    if configs.ndim != expected[0] or configs.shape[1:] != expected[1]:
        raise EnsembleError(
            f"{path}: configs shape {configs.shape} does not match d={meta.dim}, L={meta.L}"
        )
    if configs.dtype.kind != "f" or not np.all(np.isfinite(configs)):
        raise EnsembleError(f"{path}: configs must be finite floating-point values")
    for name, value in extras.items():
        if not _NAME.match(name) or name == "configs":
            raise EnsembleError(f"{path}: invalid dataset name {name!r}")
        if value.dtype.kind not in "biuf":
            raise EnsembleError(f"{path}: dataset {name!r} has unsupported dtype {value.dtype}")
        if name in _PER_CONFIG and value.shape[:1] != configs.shape[:1]:
            raise EnsembleError(f"{path}: {name!r} needs one entry per configuration")


def write_ensemble(
    path: str | Path,
    configs: Any,
    meta: EnsembleMeta,
    extras: dict[str, Any] | None = None,
) -> WrittenEnsemble:
    """Write configs ``(N, L, ..., L)`` and metadata atomically; return path, sha256, size."""
    path = Path(path)
    configs = np.asarray(configs.detach().cpu() if hasattr(configs, "detach") else configs)
    arrays = {
        k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v)
        for k, v in (extras or {}).items()
    }
    _check_inputs(path, configs, meta, arrays)
    attrs = meta.to_attrs()
    if not meta.created:
        attrs["created"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs.update(attrs)
            _write_dataset(h5, "configs", configs)
            for name, value in arrays.items():
                _write_dataset(h5, name, value)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return WrittenEnsemble(path, file_sha256(path), path.stat().st_size)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_dataset(path: Path, ds: h5py.Dataset, verify: bool) -> np.ndarray:
    try:
        data = ds[()]
    except Exception as exc:  # h5py raises OSError/RuntimeError/... on damaged chunks
        raise EnsembleError(
            f"{path}: cannot read dataset {ds.name!r} (truncated or corrupt file): {exc}"
        ) from exc
    if verify:
        stored = ds.attrs.get("sha256")
        if stored is None:
            raise EnsembleError(f"{path}: dataset {ds.name!r} has no 'sha256' checksum")
        if isinstance(stored, bytes):
            stored = stored.decode()
        if array_sha256(data) != stored:
            raise EnsembleError(
                f"{path}: checksum mismatch in dataset {ds.name!r}: the data were modified "
                "or corrupted after writing"
            )
    return np.asarray(data)


def read_ensemble(path: str | Path, verify: bool = True) -> Ensemble:
    """Read and validate an ensemble file; raise :class:`EnsembleError` naming the problem.

    Checks: the file opens as HDF5, required attributes are present and typed, ``configs``
    has shape (N, L, ..., L) consistent with (d, L); with ``verify`` also the SHA-256 of
    every dataset and that configs are finite.
    """
    path = Path(path)
    if not path.is_file():
        raise EnsembleError(f"{path}: no such ensemble file")
    try:
        h5 = h5py.File(path, "r")
    except Exception as exc:
        raise EnsembleError(
            f"{path}: cannot be opened as HDF5 (truncated or corrupt file): {exc}"
        ) from exc
    with h5:
        try:
            meta = EnsembleMeta.from_attrs(h5.attrs)
        except EnsembleError as exc:
            raise EnsembleError(f"{path}: {exc}") from exc
        if meta.format_version > FORMAT_VERSION:
            raise EnsembleError(
                f"{path}: format version {meta.format_version} is newer than this code's "
                f"{FORMAT_VERSION}; upgrade srflow"
            )
        if "configs" not in h5 or not isinstance(h5["configs"], h5py.Dataset):
            raise EnsembleError(f"{path}: missing dataset 'configs'")
        ds = h5["configs"]
        expected = (meta.L,) * meta.dim
        if ds.ndim != meta.dim + 1 or ds.shape[1:] != expected:
            raise EnsembleError(
                f"{path}: shape mismatch: configs has shape {ds.shape}, expected "
                f"(N, {', '.join(map(str, expected))}) for d={meta.dim}, L={meta.L}"
            )
        configs = _read_dataset(path, ds, verify)
        if verify and not np.all(np.isfinite(configs)):
            raise EnsembleError(f"{path}: configs contain non-finite values")
        extras = {
            name: _read_dataset(path, obj, verify)
            for name, obj in h5.items()
            if name != "configs" and isinstance(obj, h5py.Dataset)
        }
    return Ensemble(configs, meta, extras)

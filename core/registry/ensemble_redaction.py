"""An ensemble's HDF5 file without the name of the model it was sampled from.

A sample ensemble names its source model in its root attributes (the worker's stamp
``model_name``/``model_version``/``model_ref``/``model_sha256``, the job's ``model_id``, and
``model`` inside ``sampler_settings``). A reader who may see the ensemble but not that
model version (another group's public ensemble of a private model, a version narrowed
since) gets this copy instead — the API already shows them the model as redacted.

The copy is a new file (datasets copied with their checksum attributes, root attributes
filtered), not the original with attributes deleted: HDF5 does not clear freed space, so a
deleted attribute's text would stay in the bytes. It is stored once in the content store
and recorded on the row (``redacted_sha256``/``redacted_size``), so its digest, ETag and
byte ranges are as stable as the original's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import h5py

from core.registry.models import Ensemble
from core.registry.store import ArtifactStore, Blob

MODEL_ATTRS = ("model_name", "model_version", "model_ref", "model_sha256", "model_id")
SETTINGS_ATTR = "sampler_settings"


def _without_model(settings: object) -> object:
    """``sampler_settings`` (a JSON text) without its ``model`` entry."""
    text = settings.decode() if isinstance(settings, bytes) else settings
    if not isinstance(text, str):
        return settings
    try:
        data = json.loads(text)
    except ValueError:
        return settings
    if isinstance(data, dict):
        data.pop("model", None)
    return json.dumps(data, sort_keys=True)


def write_redacted(src: Path, dest: Path) -> None:
    """Write ``src`` to ``dest`` without the source model's identity."""
    with h5py.File(src, "r") as fin, h5py.File(dest, "w") as fout:
        for name, value in fin.attrs.items():
            if name in MODEL_ATTRS:
                continue
            fout.attrs[name] = _without_model(value) if name == SETTINGS_ATTR else value
        fout.attrs["model_redacted"] = True
        for name in fin:
            fin.copy(fin[name], fout, name=name)


def redacted_blob(store: ArtifactStore, ens: Ensemble) -> Blob:
    """The redacted copy of ``ens``'s file: the recorded one, or made now, stored and
    recorded on the row (the caller commits)."""
    if ens.redacted_sha256 and ens.redacted_size is not None and \
            store.exists(ens.redacted_sha256):
        return Blob(ens.redacted_sha256, ens.redacted_size,
                    store.relpath(ens.redacted_sha256))
    tmp_dir = store.root / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="redacted-", suffix=".h5")
    os.close(fd)
    tmp = Path(name)
    try:
        write_redacted(store.root / ens.blob_path, tmp)
        blob = store.put_file(tmp, move=True)
    finally:
        tmp.unlink(missing_ok=True)
    ens.redacted_sha256, ens.redacted_size = blob.sha256, blob.size
    return blob

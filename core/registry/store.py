"""Content-addressed artifact store: ``<root>/blobs/sha256/ab/<hex>``.

A blob is written to a temporary name in the same directory tree, fsynced and renamed
onto its digest, so a reader never sees a partial file and two writers of the same
bytes leave one blob (deduplication for free). Blobs are read-only once written.

Model versions are stored one blob per file (model.safetensors, config.json,
metrics.json); the registry row maps file names to digests, and downloads assemble a
zip on the fly. Ensembles are one HDF5 blob each.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    relpath: str  # relative to the store root, e.g. blobs/sha256/ab/ab12...


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class ArtifactStore:
    """Immutable, deduplicated blobs under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def relpath(self, digest: str) -> str:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return f"blobs/sha256/{digest[:2]}/{digest}"

    def path(self, digest: str) -> Path:
        return self.root / self.relpath(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put_file(self, src: Path, *, move: bool = False) -> Blob:
        """Store a copy of ``src`` (or move it, when on the same filesystem)."""
        src = Path(src)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="incoming-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if move:
                shutil.move(str(src), tmp)
            else:
                shutil.copyfile(src, tmp)
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            return self._commit(tmp, sha256_file(tmp))
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> Blob:
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return self._commit(tmp, hashlib.sha256(data).hexdigest())
        finally:
            tmp.unlink(missing_ok=True)

    def _commit(self, tmp: Path, digest: str) -> Blob:
        dest = self.path(digest)
        size = tmp.stat().st_size
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp.chmod(0o444)
            os.replace(tmp, dest)  # atomic; a concurrent writer of equal bytes is harmless
        return Blob(digest, size, self.relpath(digest))

    def read_bytes(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

"""What an uploaded flow may declare and unpack to — no torch, O(1) checks.

An upload is untrusted input to the API process, so every size it can make the server
compute or allocate is bounded *before* the work is done:

- the body: ``max_upload_bytes`` (server setting) on the wire **and** on every byte an
  archive decompresses to, headers and padding included (:mod:`core.registry.unpack`);
- archives: at most :data:`MAX_MEMBERS` entries (files, directories, multipart parts),
  tar extended headers (PAX, GNU long names) of at most :data:`MAX_TAR_HEADER` bytes and
  :data:`MAX_TAR_HEADERS` header blocks in all, a zip central directory of at most
  :data:`MAX_ZIP_DIRECTORY` bytes, multipart part headers of at most :data:`MAX_PART_HEADER`;
- JSON files: ``config.json`` ≤ :data:`MAX_CONFIG_JSON`; ``metrics.json``/``registry.json``
  ≤ :data:`MAX_JSON` bytes and :data:`MAX_JSON_CONTAINERS` arrays/objects (json.loads of
  16 MiB of ``[],`` took ~350 MB); the safetensors header ≤ :data:`MAX_HEADER` bytes; all
  of them (the header too) nested at most :data:`MAX_JSON_DEPTH` deep (a metrics.json 400
  levels deep was stored and then answered 500 to every reader of the model);
- ``config.json``: the architecture sizes below and the total parameter count
  (:func:`check_declared`), computed in closed form from the config before any tensor is
  read, so a 359-byte config can no longer make the server enumerate 10⁹ kernel classes.
"""

from __future__ import annotations

import math

from core.physics.flows.config import FlowConfig, parameter_shapes
from core.registry.json_depth import MAX_JSON_DEPTH, within_depth

MAX_MEMBERS = 64
MAX_TAR_HEADER = 64 * 2**10
MAX_TAR_HEADERS = 128
MAX_ZIP_DIRECTORY = 1 * 2**20
MAX_PART_HEADER = 8 * 2**10
MAX_FIELD = 1 * 2**10  # a text field of a multipart body (name, visibility)

MAX_CONFIG_JSON = 64 * 2**10
MAX_JSON = 8 * 2**20
MAX_JSON_CONTAINERS = 2**18
MAX_CARD = 1 * 2**20
MAX_HEADER = 1 * 2**20

# architecture a config.json may declare (FlowConfig itself bounds dim ≤ 3, fine_L ≤ 4096)
MAX_KERNEL = 65
MAX_WIDTH = 1024  # n_freq F, n_time D, bond_freq F', bond_time D'
MAX_LEVELS = 12
MAX_PARAMETERS = 2**27  # 512 MiB of float32 weights


def _printable(text: str) -> str:
    """Archive names decode with surrogate escapes; a problem+json body must be UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class UploadError(ValueError):
    """A refused upload; ``field`` is e.g. ``model.safetensors`` or ``config.json:solver``."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        field, message = _printable(field), _printable(message)
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.status = field, message, status


def too_large(limit: int) -> UploadError:
    return UploadError("body", f"unpacks to more than max_upload_bytes={limit}", 413)


def check_declared(config: FlowConfig) -> int:
    """Refuse architecture sizes beyond the caps, naming the field; returns the number of
    scalars ``model.safetensors`` must hold (closed form, no tensor read)."""
    caps = {"n_freq": MAX_WIDTH, "n_time": MAX_WIDTH, "bond_freq": MAX_WIDTH,
            "bond_time": MAX_WIDTH, "kernel_size": MAX_KERNEL, "levels": MAX_LEVELS}
    for name, cap in caps.items():
        value = getattr(config, name)
        if value is not None and value > cap:
            raise UploadError(f"config.json:{name}", f"{name}={value} exceeds this server's "
                              f"upload limit {cap}")
    total = sum(math.prod(shape) for shape in parameter_shapes(config).values())
    if total > MAX_PARAMETERS:
        raise UploadError("config.json", f"declares {total} parameters (kind={config.kind}, "
                          f"dim={config.dim}, fine_L={config.fine_L}, bond_freq="
                          f"{config.bond_freq}, bond_time={config.bond_time}), more than the "
                          f"{MAX_PARAMETERS} an upload may hold")
    return total


def check_json_size(name: str, raw: bytes, limit: int) -> None:
    """Before json.loads: ``raw`` within ``limit`` bytes and MAX_JSON_CONTAINERS containers
    (each ``[``/``{``, also inside strings: a conservative count), nested at most
    MAX_JSON_DEPTH deep (:func:`check_json_depth`)."""
    if len(raw) > limit:
        raise UploadError(name, f"larger than {limit} bytes")
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_JSON_CONTAINERS:
        raise UploadError(name, f"{containers} JSON arrays/objects: more than the "
                          f"{MAX_JSON_CONTAINERS} an upload may hold")
    check_json_depth(name, raw)


def check_json_depth(name: str, raw: bytes) -> None:
    """Before json.loads: ``raw`` nests at most MAX_JSON_DEPTH arrays/objects deep."""
    if not within_depth(raw, MAX_JSON_DEPTH):
        raise UploadError(name, f"JSON nested deeper than {MAX_JSON_DEPTH} arrays/objects: "
                          "flatten it (a flow's files nest a few levels at most)")

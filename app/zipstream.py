"""A zip archive written piece by piece into a generator, for StreamingResponse.

:class:`zipfile.ZipFile` writes to any object with ``write``; without ``tell``/``seek``
it records sizes and CRCs in data descriptors after each member, so the archive can be
sent as it is produced. Memory stays at about one read chunk plus the deflate state,
whatever the size of the files (the download built the whole zip in a BytesIO, ~3× the
weights). The result reads with :mod:`zipfile`, ``unzip`` and ``bsdtar``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20
EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same version gives the same bytes


class _Pipe:
    """What zipfile writes into; the generator drains it after each piece."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def zip_stream(entries: list[tuple[str, Path | bytes]]) -> Iterator[bytes]:
    """The deflated zip of ``entries`` (archive name, file or bytes), in order."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, src in entries:
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(src, bytes):
                zf.writestr(info, src)
            else:
                info.file_size = src.stat().st_size  # zip64 fields only when needed
                with src.open("rb") as f, zf.open(info, "w") as dst:
                    while chunk := f.read(CHUNK):
                        dst.write(chunk)
                        if data := pipe.drain():
                            yield data
            if data := pipe.drain():
                yield data
    if data := pipe.drain():
        yield data

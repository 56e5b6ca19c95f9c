"""Unpack an upload body (zip, tar[.gz|.bz2|.xz], multipart) into files, every byte counted.

The body is already on disk and within ``max_upload_bytes``; what it *unpacks to* is
bounded here against the same limit:

- tar: the decompressed stream is read through :class:`CountingReader`, so every byte the
  tar reader consumes counts — headers, PAX/GNU long-name records, padding, directory
  entries — not only regular-file data (a 204 KB .tgz holding a 200 MB PAX header used to
  cost ~613 MB); each extended header is capped at ``MAX_TAR_HEADER`` when its header
  block is parsed, before its body is read; header blocks and members are counted;
- zip: the central directory's size and entry count are read from the end record before
  :class:`zipfile.ZipFile` parses it; member data is counted as it is decompressed;
- multipart: :func:`core.registry.multipart.read_multipart`, streamed part by part;
- truncated or corrupt archives are an :class:`UploadError` (422), never an EOFError (500).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol, Self

from core.registry.multipart import read_multipart
from core.registry.upload_limits import (
    MAX_MEMBERS,
    MAX_TAR_HEADER,
    MAX_TAR_HEADERS,
    MAX_ZIP_DIRECTORY,
    UploadError,
    too_large,
)
from core.registry.uploads import check_name

TAR_TYPES = ("application/x-tar", "application/gzip", "application/x-gzip")
EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
            tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
CORRUPT = (EOFError, OSError, zlib.error, lzma.LZMAError, struct.error, ValueError)


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class CountingReader:
    """A read-only file object that refuses to yield more than ``limit`` bytes in all."""

    def __init__(self, raw: Readable, limit: int) -> None:
        self.raw, self.limit, self.count = raw, limit, 0

    def read(self, n: int = -1) -> bytes:
        want = self.limit + 1 - self.count
        data = self.raw.read(want if n is None or n < 0 else min(n, want))
        self.count += len(data)
        if self.count > self.limit:
            raise too_large(self.limit)
        return data


def member_path(name: str, out: Path) -> Path:
    """``out/<base name>`` for an archive member or form file, after the name checks."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    base = parts[-1] if parts else ""
    if not base or ".." in parts or name.startswith("/"):
        raise UploadError(name or "archive", "unsafe member name")
    check_name(base)
    dest = out / base
    if dest.exists():
        raise UploadError(base, "appears twice in the upload")
    return dest


def _copy_limited(src: Any, dest: Path, budget: list[int], limit: int) -> None:
    with dest.open("wb") as f:
        while chunk := src.read(1 << 20):
            budget[0] += len(chunk)
            if budget[0] > limit:
                raise too_large(limit)
            f.write(chunk)


def _decompressed(f: BinaryIO) -> Readable:
    magic = f.read(6)
    f.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(f)
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(f)
    return f


def _limited_tarinfo() -> type[tarfile.TarInfo]:
    """A TarInfo class that checks each header block as it is parsed: extended headers
    (PAX, GNU long names) within MAX_TAR_HEADER, header blocks within MAX_TAR_HEADERS."""
    seen = [0]

    class Limited(tarfile.TarInfo):
        @classmethod
        def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
            info = super().frombuf(buf, encoding, errors)
            seen[0] += 1
            if seen[0] > MAX_TAR_HEADERS:
                raise UploadError("body", f"more than {MAX_TAR_HEADERS} tar headers")
            if info.type in EXTENDED and info.size > MAX_TAR_HEADER:
                raise UploadError("body", f"a {info.size}-byte tar extended "
                                  f"header (PAX or long name): at most {MAX_TAR_HEADER}")
            return info

    return Limited


def _tar(body: Path, out: Path, limit: int) -> None:
    budget, members = [0], 0
    with body.open("rb") as f:
        try:
            stream = CountingReader(_decompressed(f), limit)
            with tarfile.open(fileobj=stream, mode="r|",  # type: ignore[call-overload,arg-type]
                              tarinfo=_limited_tarinfo()) as tf:
                for tinfo in tf:
                    members += 1
                    if members > MAX_MEMBERS:
                        raise UploadError("body", f"more than {MAX_MEMBERS} archive members")
                    if tinfo.isdir():
                        continue
                    if tinfo.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                        raise UploadError(tinfo.name, "only regular files (no links, devices, "
                                          "sparse files)")
                    member = tf.extractfile(tinfo)
                    assert member is not None
                    _copy_limited(member, member_path(tinfo.name, out), budget, limit)
        except UploadError:
            raise
        except tarfile.TarError as exc:
            raise UploadError("body", f"not a readable tar archive ({exc})") from None
        except CORRUPT as exc:  # gzip/bz2/xz: truncated or corrupt
            raise UploadError("body", f"truncated or corrupt archive ({type(exc).__name__}: "
                              f"{exc})") from None


def _zip_directory(body: Path) -> tuple[int, int]:
    """(entries, central-directory bytes) as :class:`zipfile.ZipFile` will read them: the
    last end record in the final 64 KiB, overridden by a zip64 end record just before it
    (zipfile trusts that one whenever its locator is present)."""
    size = body.stat().st_size
    start = max(size - (22 + 65535), 0)
    with body.open("rb") as f:
        f.seek(start)
        tail = f.read()
        i = tail.rfind(b"PK\x05\x06")
        if i < 0 or len(tail) - i < 22:
            raise UploadError("body", "not a zip archive (no end of central directory)")
        entries, cd_size = struct.unpack("<HI", tail[i + 10:i + 16])
        end = start + i
        if end >= 20 + 56:
            f.seek(end - 20 - 56)
            rec = f.read(56 + 20)
            if rec[56:60] == b"PK\x06\x07":  # zip64 locator
                if rec[:4] != b"PK\x06\x06":
                    raise UploadError("body", "a zip64 archive without its end record")
                entries, cd_size = struct.unpack("<QQ", rec[32:48])
    return entries, cd_size


def _zip(body: Path, out: Path, limit: int) -> None:
    entries, cd_size = _zip_directory(body)
    if entries > MAX_MEMBERS:
        raise UploadError("body", f"{entries} zip entries: at most {MAX_MEMBERS}")
    if cd_size > MAX_ZIP_DIRECTORY:
        raise UploadError("body", f"a {cd_size}-byte zip central directory: at most "
                          f"{MAX_ZIP_DIRECTORY}")
    budget = [0]
    try:
        with zipfile.ZipFile(body) as zf:
            if len(zf.infolist()) > MAX_MEMBERS:
                raise UploadError("body", f"more than {MAX_MEMBERS} zip entries")
            for zinfo in zf.infolist():
                if zinfo.is_dir():
                    continue
                with zf.open(zinfo) as src:
                    _copy_limited(src, member_path(zinfo.filename, out), budget, limit)
    except UploadError:
        raise
    except zipfile.BadZipFile as exc:
        raise UploadError("body", f"not a readable zip archive ({exc})") from None
    except (*CORRUPT, NotImplementedError, RuntimeError) as exc:  # RuntimeError: encrypted
        raise UploadError("body", f"truncated or corrupt zip archive ({type(exc).__name__}: "
                          f"{exc})") from None


def unpack(body: Path, content_type: str, out: Path, limit: int) -> dict[str, str]:
    """Files into ``out``; returns the text fields (multipart). UploadError on bad input.

    ``content_type``: the media type for zip and tar, the full header for multipart."""
    media = content_type.split(";")[0].strip().lower()
    if media == "application/zip":
        _zip(body, out, limit)
        return {}
    if media in TAR_TYPES:
        _tar(body, out, limit)
        return {}
    return read_multipart(body, content_type, limit, lambda name: member_path(name, out))

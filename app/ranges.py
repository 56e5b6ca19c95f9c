"""Serve an immutable blob with HTTP Range (RFC 9110 §14), ETag and Repr-Digest (RFC 9530)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from app.problems import Problem

CHUNK = 1 << 16
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
_HUGE = 1 << 64  # stands for any position past every file (and past int()'s digit limit)


def _position(digits: str) -> int:
    """A byte position from its decimal digits; more than 19 significant digits → _HUGE
    (int() refuses over 4300 digits with a ValueError, which was a 500)."""
    digits = digits.lstrip("0") or "0"
    return _HUGE if len(digits) > 19 else int(digits)


def digest_headers(sha256_hex: str) -> dict[str, str]:
    b64 = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    return {"ETag": f'"{sha256_hex}"', "Repr-Digest": f"sha-256=:{b64}:",
            "Accept-Ranges": "bytes", "Cache-Control": "private, max-age=31536000, immutable"}


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None for 'send it all'; Problem(416) if unsatisfiable."""
    header = header.strip()
    if not header.lower().startswith("bytes="):
        return None  # other units: ignore the header (RFC 9110 §14.2)
    shown = header if len(header) <= 80 else header[:80] + "…"
    bad = Problem(416, f"Range {shown!r} does not fit a {size}-byte file: use bytes=FIRST-LAST "
                  f"with FIRST < {size}", slug="range-not-satisfiable",
                  headers={"Content-Range": f"bytes */{size}"})
    if "," in header:
        return None  # several ranges: send the whole representation instead
    m = _RANGE.match(header.replace(" ", ""))
    if m is None or (not m.group(1) and not m.group(2)):
        raise bad
    if not m.group(1):  # suffix: the last N bytes
        n = _position(m.group(2))
        if n == 0 or size == 0:
            raise bad
        return max(size - n, 0), size - 1
    first = _position(m.group(1))
    last = _position(m.group(2)) if m.group(2) else size - 1
    if first >= size or last < first:
        raise bad
    return first, min(last, size - 1)


def _read(path: Path, first: int, last: int) -> Iterator[bytes]:
    with path.open("rb") as f:
        f.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


def serve_blob(
    request: Request, path: Path, sha256_hex: str, media_type: str, filename: str
) -> Response:
    size = path.stat().st_size
    headers = digest_headers(sha256_hex)
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if request.headers.get("if-none-match", "").strip() in (headers["ETag"], "*"):
        return Response(status_code=304, headers=headers)
    rng = None
    if_range = request.headers.get("if-range")
    if "range" in request.headers and (if_range is None or if_range.strip() == headers["ETag"]):
        rng = parse_range(request.headers["range"], size)
    if rng is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(_read(path, 0, size - 1), media_type=media_type,
                                 headers=headers)
    first, last = rng
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(_read(path, first, last), status_code=206, media_type=media_type,
                             headers=headers)

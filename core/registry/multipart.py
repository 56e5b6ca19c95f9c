"""A streaming ``multipart/form-data`` reader (RFC 7578, RFC 2046 §5.1) for upload bodies.

The body is read from a spooled file in :data:`CHUNK`-byte pieces and each file part is
written straight to its destination, so memory stays at about two chunks whatever the body
size (``email.parser`` held the whole body and its parts: ~9× a 64 MiB body). Part headers
are capped at :data:`~core.registry.upload_limits.MAX_PART_HEADER` bytes, parts at
:data:`~core.registry.upload_limits.MAX_MEMBERS`, text fields at ``MAX_FIELD``.

The body is ``[preamble] (CRLF? "--" boundary CRLF headers CRLF CRLF data)* CRLF "--"
boundary "--" [epilogue]``; a delimiter is CRLF + "--" + boundary, so prefixing the body
with CRLF lets the first one match too.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from core.registry.upload_limits import (
    MAX_FIELD,
    MAX_MEMBERS,
    MAX_PART_HEADER,
    UploadError,
    too_large,
)

CHUNK = 1 << 20
TEXT_FIELDS = ("name", "visibility")


def boundary_of(content_type: str) -> bytes:
    msg = email.message.Message()
    msg["content-type"] = content_type
    raw = msg.get_param("boundary")
    value = email.utils.collapse_rfc2231_value(raw) if raw is not None else ""
    if not value or len(value) > 200 or not value.isascii():
        raise UploadError("body", "multipart/form-data needs a boundary parameter (1-70 "
                          "ASCII characters) in its Content-Type")
    return value.encode("ascii")


def _param(headers: email.message.Message, name: str) -> str | None:
    raw = headers.get_param(name, header="content-disposition")
    if raw is None:
        return None
    return str(email.utils.collapse_rfc2231_value(raw))


def _headers(block: bytes) -> email.message.Message:
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    headers = parser.parsebytes(block + b"\r\n\r\n")
    cte = (headers.get("content-transfer-encoding") or "binary").strip().lower()
    if cte not in ("binary", "8bit", "7bit"):
        raise UploadError("body", f"Content-Transfer-Encoding {cte!r} in a form part: send "
                          "the file bytes as they are (binary)")
    return headers


class _Sink:
    """Where the current part's bytes go: a file, or a small text buffer."""

    def __init__(self, path: Path | None, field: str, limit: int, used: list[int]) -> None:
        self.file: BinaryIO | None = path.open("wb") if path is not None else None
        self.text = bytearray()
        self.field, self.limit, self.used = field, limit, used

    def write(self, data: bytes | bytearray) -> None:
        self.used[0] += len(data)
        if self.used[0] > self.limit:
            raise too_large(self.limit)
        if self.file is not None:
            self.file.write(data)
            return
        self.text += data
        if len(self.text) > MAX_FIELD:
            raise UploadError(self.field, f"a text field longer than {MAX_FIELD} bytes")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def read_multipart(body: Path, content_type: str, limit: int,
                   dest_for: Callable[[str], Path]) -> dict[str, str]:
    """Write each file part to ``dest_for(filename)``; return the text fields.

    Raises :class:`UploadError` on a malformed body, an unknown form field, or more than
    ``limit`` bytes of part data."""
    delim = b"\r\n--" + boundary_of(content_type)
    keep = len(delim) + 4  # a tail that may hold a delimiter split across two reads
    buf, state, parts, used = bytearray(b"\r\n"), "preamble", 0, [0]
    fields: dict[str, str] = {}
    sink: _Sink | None = None
    with body.open("rb") as f:
        eof = False
        try:
            while True:
                if state == "preamble":
                    i = buf.find(delim)
                    if i >= 0:
                        del buf[:i + len(delim)]
                        state = "boundary"
                        continue
                    del buf[:max(len(buf) - keep, 0)]
                elif state == "boundary":  # after a delimiter: "--" or [LWSP] CRLF
                    if buf[:2] == b"--":
                        return fields
                    j = buf.find(b"\r\n")
                    if j >= 0:
                        if buf[:j].strip(b" \t"):
                            raise UploadError("body", "malformed multipart body: text after a "
                                              "boundary")
                        del buf[:j + 2]
                        state = "headers"
                        continue
                    if len(buf) > MAX_PART_HEADER:
                        raise UploadError("body", "malformed multipart body")
                elif state == "headers":
                    j = buf.find(b"\r\n\r\n")
                    if j < 0 and len(buf) > MAX_PART_HEADER:
                        raise UploadError("body", f"a form part's headers exceed "
                                          f"{MAX_PART_HEADER} bytes")
                    if j >= 0:
                        if j > MAX_PART_HEADER:
                            raise UploadError("body", f"a form part's headers exceed "
                                              f"{MAX_PART_HEADER} bytes")
                        parts += 1
                        if parts > MAX_MEMBERS:
                            raise UploadError("body", f"more than {MAX_MEMBERS} form parts")
                        headers = _headers(bytes(buf[:j]))
                        del buf[:j + 4]
                        fname = _param(headers, "filename")
                        field = _param(headers, "name") or ""
                        if fname is None and field not in TEXT_FIELDS:
                            raise UploadError(field or "body", "unknown form field: send name, "
                                              "visibility and files")
                        if fname is None and field in fields:
                            raise UploadError(field, "appears twice in the form")
                        sink = _Sink(None if fname is None else dest_for(fname), field, limit,
                                     used)
                        state = "data"
                        continue
                else:  # data
                    assert sink is not None
                    i = buf.find(delim)
                    if i >= 0:
                        sink.write(buf[:i])
                        sink.close()
                        if sink.file is None:
                            fields[sink.field] = sink.text.decode("utf-8", "replace").strip()
                        sink = None
                        del buf[:i + len(delim)]
                        state = "boundary"
                        continue
                    if len(buf) > keep:
                        sink.write(buf[:len(buf) - keep])
                        del buf[:len(buf) - keep]
                if eof:
                    raise UploadError("body", "truncated multipart body: no closing boundary")
                chunk = f.read(CHUNK)
                eof = not chunk
                buf += chunk
        finally:
            if sink is not None:
                sink.close()

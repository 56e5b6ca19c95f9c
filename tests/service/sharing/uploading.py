"""Building upload bodies (zip, multipart) from a flow directory."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx


def zip_dir(d: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.write(p, p.name)
    return buf.getvalue()


def upload_zip(c: httpx.Client, body: bytes, name: str, visibility: str = "group",
               **headers: str) -> httpx.Response:
    return c.post("/v1/models", params={"name": name, "visibility": visibility}, content=body,
                  headers={"Content-Type": "application/zip", **headers})


def upload_multipart(c: httpx.Client, files: dict[str, bytes], name: str,
                     visibility: str = "group") -> httpx.Response:
    parts: Any = {k: (k, v, "application/octet-stream") for k, v in files.items()}
    return c.post("/v1/models", data={"name": name, "visibility": visibility}, files=parts)

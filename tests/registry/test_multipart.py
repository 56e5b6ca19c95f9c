"""The streaming multipart/form-data reader: exact bytes whatever the read size, and its caps."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.registry import multipart
from core.registry.multipart import read_multipart
from core.registry.upload_limits import UploadError

BOUNDARY = "srflow-test-boundary-0123456789"


def _body(tmp: Path, files: dict[str, bytes], fields: dict[str, str]) -> tuple[Path, str]:
    req = httpx.Request("POST", "http://t/", data=fields,
                        files={k: (k, v, "application/octet-stream") for k, v in files.items()},
                        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    (tmp / "body").write_bytes(req.read())
    return tmp / "body", req.headers["content-type"]


def _read(tmp: Path, body: Path, ctype: str, limit: int = 10**6) -> tuple[dict[str, str],
                                                                          dict[str, bytes]]:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    fields = read_multipart(body, ctype, limit, lambda name: out / name)
    return fields, {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_parts_are_exact_across_read_boundaries(tmp_path: Path, chunk: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multipart, "CHUNK", chunk)
    boundary = BOUNDARY.encode()
    nasty = b"\r\n--" + boundary[:-1] + b"x\r\n--\r\n\r\n" + bytes(range(256)) + b"\r\n-"
    files = {"model.safetensors": nasty * 5, "config.json": b"", "metrics.json": b"{}\r\n"}
    body, ctype = _body(tmp_path, files, {"name": "m1", "visibility": "public"})
    fields, got = _read(tmp_path, body, ctype)
    assert fields == {"name": "m1", "visibility": "public"} and got == files


def test_caps_and_malformed_bodies(tmp_path: Path) -> None:
    body, ctype = _body(tmp_path, {"a.bin": b"1" * 1000}, {})
    with pytest.raises(UploadError) as err:
        _read(tmp_path, body, ctype, limit=999)
    assert err.value.status == 413
    many = b"".join(b"--B\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f%d\"\r\n"
                    b"\r\nx\r\n" % i for i in range(70)) + b"--B--\r\n"
    cases = {
        "more than 64 form parts": many,
        "headers exceed": b"--B\r\nX-Pad: " + b"p" * 10_000 + b"\r\n\r\nx\r\n--B--\r\n",
        "no closing boundary": b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nab",
        "Content-Transfer-Encoding": b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n"
                                     b"Content-Transfer-Encoding: base64\r\n\r\neA==\r\n--B--",
        "longer than 1024": b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n"
                            + b"n" * 2000 + b"\r\n--B--",
        "unknown form field": b"--B\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1"
                              b"\r\n--B--",
    }
    for i, (needle, raw) in enumerate(cases.items()):
        (tmp_path / f"b{i}").write_bytes(raw)
        with pytest.raises(UploadError) as err:
            read_multipart(tmp_path / f"b{i}", "multipart/form-data; boundary=B", 10**6,
                           lambda name, i=i: tmp_path / f"o{i}-{name}")
        assert needle in err.value.message and err.value.status == 422, (needle, err.value)
    with pytest.raises(UploadError, match="boundary"):
        read_multipart(body, "multipart/form-data", 10**6, lambda name: tmp_path / name)

"""Upload bodies and model downloads stay bounded in memory.

In process, no servers: the app's ASGI callable is driven directly so that only the API's
own allocations are traced (TestClient and httpx's ASGI transport hold whole bodies).
Archive tricks that used to cost hundreds of MB or answer 500 are refused with 4xx
problem+json; a 12 MiB multipart upload and its download peak at a few MiB.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings
from tests.registry.flowfiles import CONFIG, write_flow
from tests.service.sharing.uploading import upload_zip, zip_dir

KEY = "srf_5eed5eed_upload-streaming-admin-key"
LIMIT = 64 * 2**20
PROBLEM = "application/problem+json"
BIG = {**CONFIG, "fine_L": 16, "levels": 2, "bond_freq": 1024, "bond_time": 512}  # 12 MiB


@pytest.fixture
def app_client(tmp_path: Path) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(Settings(data_dir=tmp_path / "data", admin_key=KEY,
                              max_upload_bytes=LIMIT))
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        yield app, c


async def _asgi(app: FastAPI, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes, sink: io.RawIOBase | None) -> tuple[int, dict[str, str], int]:
    """(status, headers, body bytes) of one request; the response body goes to ``sink``."""
    done = asyncio.Event()
    pieces = (body[i:i + 65536] for i in range(0, max(len(body), 1), 65536))  # lazily
    status, out_headers, size = 0, {}, 0

    async def receive() -> dict[str, Any]:
        piece = next(pieces, None)
        if piece is not None:
            return {"type": "http.request", "body": piece, "more_body": True}
        if not done.is_set() and not body_sent[0]:
            body_sent[0] = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status, out_headers, size
        if msg["type"] == "http.response.start":
            status = msg["status"]
            out_headers = {k.decode(): v.decode() for k, v in msg["headers"]}
        elif msg["type"] == "http.response.body":
            size += len(msg.get("body", b""))
            if sink is not None:
                sink.write(msg.get("body", b""))
            if not msg.get("more_body", False):
                done.set()

    body_sent = [False]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query.encode(), "root_path": "", "client": ("127.0.0.1", 1),
             "server": ("testserver", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {"authorization": f"Bearer {KEY}", **headers}.items()]}
    await app(scope, receive, send)
    return status, out_headers, size


def _traced(app: FastAPI, method: str, path: str, query: str = "",
            headers: dict[str, str] | None = None, body: bytes = b"",
            sink: io.RawIOBase | None = None) -> tuple[int, dict[str, str], int, int]:
    """_asgi plus the peak of Python allocations meanwhile (body already allocated)."""
    tracemalloc.start()
    try:
        out = asyncio.run(_asgi(app, method, path, query, headers or {}, body, sink))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (*out, peak)


@pytest.mark.slow  # ~1 s alone; tracemalloc over 12 MiB of deflate and hashing
def test_large_multipart_upload_and_zip_download_stay_small(
        app_client: tuple[FastAPI, TestClient], tmp_path: Path) -> None:
    app, _ = app_client
    d = write_flow(tmp_path / "big", config=BIG)
    files = {p.name: p.read_bytes() for p in d.iterdir()}
    weights = files["model.safetensors"]
    assert len(weights) > 12 * 2**20
    req = httpx.Request("POST", "http://t/v1/models", data={"name": "big", "visibility": "group"},
                        files={k: (k, v, "application/octet-stream") for k, v in files.items()})
    body = req.read()
    status, _, _, peak = _traced(app, "POST", "/v1/models", headers={
        "content-type": req.headers["content-type"], "content-length": str(len(body))},
        body=body)
    del body
    assert status == 201
    assert peak < 8 * 2**20, f"upload of {len(weights)} B peaked at {peak} B"  # old: ~9x

    with tempfile.TemporaryFile() as f:
        status, headers, size, peak = _traced(app, "GET", "/v1/models/big/versions/1/download",
                                              sink=f)  # type: ignore[arg-type]
        assert status == 200 and headers["content-type"] == "application/zip"
        assert peak < 8 * 2**20, f"download of {size} B peaked at {peak} B"  # old: ~3x
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            assert zf.testzip() is None
            assert hashlib.sha256(zf.read("model.safetensors")).hexdigest() == \
                hashlib.sha256(weights).hexdigest() == headers["x-weights-sha256"]
            assert {"config.json", "metrics.json", "README.md", "registry.json"} <= set(
                zf.namelist())


def test_a_download_uploads_again_byte_for_byte(app_client: tuple[FastAPI, TestClient],
                                                tmp_path: Path) -> None:
    _, c = app_client
    assert upload_zip(c, zip_dir(write_flow(tmp_path / "f")), "orig").status_code == 201
    z = c.get("/v1/models/orig/versions/1/download")
    assert z.status_code == 200 and "content-length" not in z.headers  # streamed
    r = upload_zip(c, z.content, "copy")
    assert r.status_code == 201, r.text
    assert r.json()["metrics"]["uploaded_from"]["ref"] == "orig/1"


def _tgz(flow: Path, extra: list[tarfile.TarInfo], pax: dict[str, str] | None = None,
         cut: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for info in extra:
            tf.addfile(info)
        for p in sorted(flow.iterdir()):
            info = tf.gettarinfo(p, p.name)
            info.pax_headers = dict(pax or {})
            with p.open("rb") as f:
                tf.addfile(info, f)
    raw = buf.getvalue()
    return raw[:len(raw) - cut] if cut else raw


def _dir(name: str, pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.pax_headers = tarfile.DIRTYPE, 0o755, dict(pax or {})
    return info


def _refused(c: TestClient, body: bytes, ctype: str, status: int, field: str,
             needle: str) -> None:
    tracemalloc.start()
    try:
        r = c.post("/v1/models", params={"name": "trick"}, content=body,
                   headers={"Content-Type": ctype})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == status and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["errors"][0]["field"] == field and needle in r.json()["detail"], r.json()
    assert peak < 16 * 2**20, peak


def test_tar_tricks_are_refused_early(app_client: tuple[FastAPI, TestClient],
                                      tmp_path: Path) -> None:
    _, c = app_client
    flow = write_flow(tmp_path / "f")
    # a 2 MB PAX header in a few-kB .tgz (200 MB took ~613 MB before)
    bomb = _tgz(flow, [], pax={"comment": "x" * 2_000_000})
    assert len(bomb) < 20_000
    _refused(c, bomb, "application/gzip", 422, "body", "tar extended header")
    # thousands of directory entries (300k were accepted after 26 s)
    many = _tgz(flow, [_dir(f"d{i}") for i in range(300)])
    _refused(c, many, "application/gzip", 422, "body", "more than 64 archive members")
    # a GNU long-name record over the header cap
    gnu = io.BytesIO()
    with tarfile.open(fileobj=gnu, mode="w:gz", format=tarfile.GNU_FORMAT) as tf:
        tf.addfile(_dir("n" * 70_000))
    _refused(c, gnu.getvalue(), "application/gzip", 422, "body", "tar extended header")
    # a member name that is not UTF-8 (a UnicodeEncodeError and a 500 in the problem body)
    latin = io.BytesIO()
    with tarfile.open(fileobj=latin, mode="w", format=tarfile.GNU_FORMAT,
                      encoding="latin-1") as tf:
        info = tarfile.TarInfo("\xff\xfe.bin")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    _refused(c, latin.getvalue(), "application/x-tar", 422, "\\udcff\\udcfe.bin", "pickled")
    # truncated .tgz: an EOFError and a 500 before
    _refused(c, _tgz(flow, [], cut=40), "application/gzip", 422, "body", "truncated")


def test_tar_headers_count_against_the_limit(tmp_path: Path) -> None:
    """Only regular-file bytes counted before: 60 kB PAX records on six entries unpack to
    ~370 kB of a 300 kB limit although the files hold ~5 kB."""
    app = create_app(Settings(data_dir=tmp_path / "data", admin_key=KEY,
                              max_upload_bytes=300_000))
    flow = write_flow(tmp_path / "f")
    pax = {"comment": "y" * 60_000}
    body = _tgz(flow, [_dir(f"d{i}", pax) for i in range(3)], pax=pax)
    with TestClient(app, headers={"Authorization": f"Bearer {KEY}"}) as c:
        _refused(c, body, "application/gzip", 413,
                 "body", "max_upload_bytes=300000")
        ok = _tgz(flow, [_dir("flow")])  # a plain .tgz of a flow still goes in
        assert c.post("/v1/models", params={"name": "plain"}, content=ok,
                      headers={"Content-Type": "application/gzip"}).status_code == 201


def test_zip_member_cap(app_client: tuple[FastAPI, TestClient], tmp_path: Path) -> None:
    _, c = app_client
    flow = write_flow(tmp_path / "f")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(100):
            zf.writestr(f"d{i}/", b"")
        for p in flow.iterdir():
            zf.write(p, p.name)
    _refused(c, buf.getvalue(), "application/zip", 422, "body", "103 zip entries")

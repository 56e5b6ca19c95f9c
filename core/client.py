"""A small Python client for the srflow HTTP API (httpx; no torch).

    from core.client import SrflowClient
    c = SrflowClient("http://127.0.0.1:8000", key)
    op = c.submit("hmc", {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "n_samples": 64})
    op = c.wait(op["name"], progress=print)
    c.download_ensemble(op["response"]["ensemble"]["id"], Path("ens.h5"))  # sha256 checked
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

CHUNK = 1 << 20  # bytes per read when hashing or writing a download


class Digest(Protocol):
    """What the download helpers need of a hashlib object."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


def _hash_existing(path: Path) -> Digest:
    """A sha256 already fed with the bytes of ``path`` (a partial download being resumed)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h


def _write_stream(r: httpx.Response, path: Path, mode: str, h: Digest) -> None:
    """Write the response body to ``path`` chunk by chunk, feeding ``h``; never the whole
    body in memory."""
    with path.open(mode) as f:
        for chunk in r.iter_bytes(CHUNK):
            f.write(chunk)
            h.update(chunk)


class SrflowError(Exception):
    """An error answer (problem+json) from the server, or a failed integrity check."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status, self.problem = status, problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    size: int


def job_id_of(name: str) -> str:
    return name.removeprefix("jobs/")


class SrflowClient:
    def __init__(self, url: str, key: str | None = None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SrflowClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check(self, r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                problem = {"title": r.reason_phrase, "detail": r.text[:500]}
            raise SrflowError(r.status_code, problem)
        return r

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._check(self.http.request(method, path, **kw)).json()

    # jobs
    def health(self) -> dict[str, Any]:
        return self._json("GET", "/v1/health")  # type: ignore[no-any-return]

    def submit(
        self,
        kind: str,
        spec: dict[str, Any],
        *,
        model_name: str | None = None,
        visibility: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "spec": spec}
        if model_name:
            body["model_name"] = model_name
        if visibility:
            body["visibility"] = visibility
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self._json("POST", "/v1/jobs", json=body, headers=headers)  # type: ignore

    def get(self, job: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id_of(job)}")  # type: ignore[no-any-return]

    def jobs(self, *, kind: str | None = None, state: str | None = None,
             page_size: int = 50) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            params = {k: v for k, v in (("kind", kind), ("state", state),
                                        ("page_size", page_size), ("page_token", token)) if v}
            page = self._json("GET", "/v1/jobs", params=params)
            yield from page["operations"]
            token = page.get("next_page_token")
            if not token:
                return

    def cancel(self, job: str) -> dict[str, Any]:
        return self._json("POST", f"/v1/jobs/{job_id_of(job)}:cancel")  # type: ignore

    def events(self, job: str, *, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Operations as the server streams them (Server-Sent Events), ending when done."""
        with self.http.stream("GET", f"/v1/jobs/{job_id_of(job)}/events",
                              timeout=httpx.Timeout(timeout or 30.0, read=timeout)) as r:
            if r.status_code >= 400:
                r.read()
                self._check(r)
            data: list[str] = []
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif line == "" and data:
                    yield json.loads("\n".join(data))
                    data = []

    def wait(
        self,
        job: str,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        timeout: float | None = None,
        poll: float = 1.0,
    ) -> dict[str, Any]:
        """Follow the job until done (events; polling if the stream breaks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            for op in self.events(job, timeout=timeout):
                if progress is not None:
                    progress(op)
                if op.get("done"):
                    return op
        except (httpx.TransportError, json.JSONDecodeError):
            pass
        while True:
            op = self.get(job)
            if progress is not None:
                progress(op)
            if op.get("done"):
                return op
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id_of(job)} not done after {timeout} s")
            time.sleep(poll)

    # scans
    def scan(self, kappa: list[float], *, L: int, lam: float | list[float] = 0.01,
             dim: int = 2, method: str = "ir", **spec: Any) -> dict[str, Any]:
        """Submit a scan job (other ScanSpec fields as keywords); returns the operation."""
        body = {"method": method, "dim": dim, "L": L, "kappa": list(kappa), "lam": lam, **spec}
        return self.submit("scan", body)

    def scan_record(self, job: str) -> dict[str, Any]:
        """The scan's finished points (also for a cancelled scan)."""
        return self._json("GET", f"/v1/jobs/{job_id_of(job)}/scan")  # type: ignore

    def download_plot(self, job: str, dest: Path) -> Download:
        """The scan's fig. 4 PNG → ``dest`` (sha256 checked against the ETag)."""
        r = self._check(self.http.get(f"/v1/jobs/{job_id_of(job)}/plot"))
        digest = hashlib.sha256(r.content).hexdigest()
        if digest != r.headers.get("etag", "").strip('"'):
            raise SrflowError(0, {"title": "checksum mismatch", "detail": digest})
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(r.content)
        return Download(dest, digest, len(r.content))

    # models
    def models(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        return self._json("GET", "/v1/models", params=params)["model_versions"]  # type: ignore

    def model(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/models/{name}")  # type: ignore[no-any-return]

    def model_version(self, name: str, version: int) -> dict[str, Any]:
        return self._json("GET", f"/v1/models/{name}/versions/{version}")  # type: ignore

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        return self._json("PUT", f"/v1/models/{name}/aliases/{alias}",  # type: ignore
                          json={"version": version})

    def download_model(self, name: str, version: int, dest: Path) -> Download:
        """The version's zip (weights, config, metrics, model card) → ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        h = hashlib.sha256()
        with self.http.stream("GET", f"/v1/models/{name}/versions/{version}/download") as r:
            if r.status_code >= 400:
                r.read()
                self._check(r)
            _write_stream(r, part, "wb", h)  # streamed: a large model never sits in memory
        part.replace(dest)  # never a truncated zip under the final name
        return Download(dest, h.hexdigest(), dest.stat().st_size)

    # ensembles
    def ensemble(self, ensemble_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/ensembles/{ensemble_id}")  # type: ignore

    def download_pyerrors(self, ensemble_id: str, dest: Path) -> Download:
        """The ensemble's per-configuration series as gzipped pyerrors JSON → ``dest``
        (converted by the server; ``pyerrors.input.json.load_json(dest)`` reads it)."""
        r = self._check(self.http.get(f"/v1/ensembles/{ensemble_id}/pyerrors"))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(r.content)
        return Download(dest, hashlib.sha256(r.content).hexdigest(), len(r.content))

    def download_ensemble(self, ensemble_id: str, dest: Path) -> Download:
        """HDF5 → ``dest``, resuming a ``.part`` file with a Range request; the sha256 of
        the bytes must match both the ETag and the Repr-Digest header, else SrflowError."""
        part = dest.with_name(dest.name + ".part")
        dest.parent.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        url = f"/v1/ensembles/{ensemble_id}/download"
        with self.http.stream("GET", url, headers=headers) as r:
            if r.status_code == 416:
                part.unlink(missing_ok=True)
                return self.download_ensemble(ensemble_id, dest)
            if r.status_code >= 400:
                r.read()
                self._check(r)
            etag = r.headers.get("etag", "").strip('"')
            digest = r.headers.get("repr-digest", "")
            resumed = r.status_code == 206
            h = _hash_existing(part) if resumed else hashlib.sha256()
            _write_stream(r, part, "ab" if resumed else "wb", h)
        got = h.hexdigest()
        want_b64 = digest.removeprefix("sha-256=:").rstrip(":")
        ok = got == etag and base64.b64encode(bytes.fromhex(got)).decode() == want_b64
        if not ok:
            part.unlink(missing_ok=True)
            raise SrflowError(0, {"title": "checksum mismatch",
                                  "detail": f"sha256 {got} != ETag {etag} / {digest}"})
        part.replace(dest)
        return Download(dest, got, dest.stat().st_size)

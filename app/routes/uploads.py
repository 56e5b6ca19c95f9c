"""POST /v1/models: upload a flow as the next version of a named model.

Body: ``multipart/form-data`` (file parts named model.safetensors, config.json, and
optionally metrics.json, README.md; text fields ``name``, ``visibility``), or the zip a
download returns (``application/zip``), or a tar (``application/x-tar``, gzip allowed).
``name`` and ``visibility`` may also be query parameters.

The body streams to a private temporary directory and is cut off at ``max_upload_bytes``
whatever Content-Length says (chunked bodies included). Nothing reaches the registry or
the artifact store until every check of :mod:`core.registry.uploads` has passed; weights
are parsed as safetensors and never unpickled.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.deps import CallerDep, SessionDep, SettingsDep
from app.problems import Problem
from app.routes.models import version_dict
from core.registry import idempotency as idem
from core.registry.keys import Caller
from core.registry.models import VISIBILITIES
from core.registry.publish import register_upload
from core.registry.store import ArtifactStore
from core.registry.uploads import UploadError, check_name, validate_flow
from core.settings import Settings

router = APIRouter(tags=["models"])
SCOPE = "POST /v1/models"


def _too_large(limit: int) -> Problem:
    return Problem(413, f"the upload exceeds this server's limit max_upload_bytes={limit}: "
                   "upload a smaller flow or ask the admin to raise SRFLOW_MAX_UPLOAD_BYTES",
                   slug="upload-too-large", title="Content too large",
                   errors=[{"field": "body", "message": f"over max_upload_bytes={limit}"}])


def _refused(exc: UploadError) -> Problem:
    return Problem(exc.status, str(exc), slug="invalid-upload",
                   errors=[{"field": exc.field, "message": exc.message}])


async def _spool(request: Request, limit: int, dest: Path) -> str:
    """Stream the body to ``dest``, stopping at ``limit`` bytes; returns its sha256."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    h, n = hashlib.sha256(), 0
    with dest.open("wb") as f:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise _too_large(limit)
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def _member(name: str, out: Path) -> Path:
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
                raise UploadError("body", f"unpacks to more than max_upload_bytes={limit}", 413)
            f.write(chunk)


def _unpack(body: Path, ctype: str, out: Path, limit: int) -> dict[str, str]:
    """Files into ``out``; returns the text fields (multipart). UploadError on bad input."""
    budget = [0]
    fields: dict[str, str] = {}
    if ctype == "application/zip":
        if not zipfile.is_zipfile(body):
            raise UploadError("body", "not a zip archive")
        with zipfile.ZipFile(body) as zf:
            for zinfo in zf.infolist():
                if zinfo.is_dir():
                    continue
                with zf.open(zinfo) as src:
                    _copy_limited(src, _member(zinfo.filename, out), budget, limit)
    elif ctype in ("application/x-tar", "application/gzip", "application/x-gzip"):
        try:
            with tarfile.open(body, mode="r:*") as tf:
                for tinfo in tf:
                    if tinfo.isdir():
                        continue
                    if not tinfo.isfile():
                        raise UploadError(tinfo.name, "only regular files (no links, devices)")
                    member = tf.extractfile(tinfo)
                    assert member is not None
                    _copy_limited(member, _member(tinfo.name, out), budget, limit)
        except tarfile.TarError as exc:
            raise UploadError("body", f"not a readable tar archive ({exc})") from None
    else:
        fields = _multipart(body, ctype, out, budget, limit)
    return fields


def _multipart(body: Path, ctype: str, out: Path, budget: list[int],
               limit: int) -> dict[str, str]:
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    with body.open("rb") as f:
        msg = parser.parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + f.read())
    if not msg.is_multipart():
        raise UploadError("body", "a multipart/form-data body without parts")
    fields: dict[str, str] = {}
    for part in msg.iter_parts():
        fname = part.get_param("filename", header="content-disposition")
        field = part.get_param("name", header="content-disposition")
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if fname is None:
            if field in ("name", "visibility"):
                fields[str(field)] = payload.decode("utf-8", "replace").strip()
                continue
            raise UploadError(str(field), "unknown form field: send name, visibility and files")
        dest = _member(str(fname), out)
        budget[0] += len(payload)
        if budget[0] > limit:
            raise UploadError("body", f"over max_upload_bytes={limit}", 413)
        dest.write_bytes(payload)
    return fields


def _store(s: Session, settings: Settings, caller: Caller, name: str, visibility: str,
           files: dict[str, Path], key: str | None) -> dict[str, Any]:
    flow = validate_flow(files)
    for attempt in range(3):  # in the request's session (no second pooled connection)
        try:
            mv = register_upload(s, ArtifactStore(settings.artifacts_dir), name=name,
                                 caller=caller, visibility=visibility, flow=flow)
            out = version_dict(mv)
            out.pop("curve")
            if key:
                idem.complete(s, caller.user, SCOPE, key, 201, out)
            s.commit()
            return out
        except IntegrityError:  # a concurrent upload took the version number
            s.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.post("/models", status_code=201, summary="Upload a flow (validated; never unpickled)")
async def upload_model(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    caller: CallerDep,
    name: Annotated[str | None, Query(description="model name (or a form field)")] = None,
    visibility: Annotated[str | None, Query(description="private | group | public")] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    key = idempotency_key
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("multipart/form-data", "application/zip", "application/x-tar",
                     "application/gzip", "application/x-gzip"):
        raise Problem(415, f"Content-Type {ctype or 'none'!r}: send multipart/form-data, "
                      "application/zip or application/x-tar", title="Unsupported media type")
    outcome: idem.Outcome | None = None
    if key:
        outcome = await run_in_threadpool(idem.begin, session, caller.user, SCOPE, key, None)
        if isinstance(outcome, idem.InProgress):
            raise Problem(409, "a request with this Idempotency-Key is still being processed: "
                          "retry when it has finished", slug="idempotency-in-progress")
    root = settings.root / "uploads"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix="upload-"))
    started = key is not None and isinstance(outcome, idem.Started)
    try:
        digest = await _spool(request, settings.max_upload_bytes, tmp / "body")
        digest = hashlib.sha256(f"{name}|{visibility}|{digest}".encode()).hexdigest()
        if key and isinstance(outcome, idem.Replay):
            if outcome.request_hash != digest:
                raise Problem(422, "this Idempotency-Key was used with a different upload: "
                              "use a new key", slug="idempotency-mismatch",
                              errors=[{"field": "Idempotency-Key",
                                       "message": "reused with another body"}])
            return JSONResponse(outcome.response, status_code=outcome.status_code)
        if started and key is not None:
            await run_in_threadpool(idem.set_hash, session, caller.user, SCOPE, key, digest)
        full = request.headers.get("content-type", "")
        (tmp / "files").mkdir()
        fields = await run_in_threadpool(_unpack, tmp / "body", full if ctype.startswith(
            "multipart/") else ctype, tmp / "files", settings.max_upload_bytes)
        name = name or fields.get("name")
        visibility = visibility or fields.get("visibility") or "group"
        if not name:
            raise UploadError("name", "name is required (query parameter or form field)")
        if visibility not in VISIBILITIES:
            raise UploadError("visibility", f"visibility={visibility!r}: use private, group "
                              "or public")
        files = {p.name: p for p in (tmp / "files").iterdir()}
        out = await run_in_threadpool(_store, session, settings, caller, name, visibility,
                                      files, key)
        started = False  # completed
        return JSONResponse(out, status_code=201, headers={
            "Location": f"/v1/models/{name}/versions/{out['version']}"})
    except UploadError as exc:
        raise _refused(exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started and key is not None:
            await run_in_threadpool(idem.release, session, caller.user, SCOPE, key)

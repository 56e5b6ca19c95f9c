"""POST /v1/models: upload a flow as the next version of a named model.

Body: ``multipart/form-data`` (file parts named model.safetensors, config.json, and
optionally metrics.json, README.md; text fields ``name``, ``visibility``), or the zip a
download returns (``application/zip``), or a tar (``application/x-tar``, gzip allowed).
``name`` and ``visibility`` may also be query parameters.

The body streams to a private temporary file and is cut off at ``max_upload_bytes``
whatever Content-Length says (chunked bodies included); it is then unpacked from disk by
:mod:`core.registry.unpack` with every decompressed byte, archive member and header
counted (multipart parts stream to their files: memory stays at about two 1 MiB chunks),
within the limits of :mod:`core.registry.upload_limits`. Nothing reaches the registry or
the artifact store until every check of :mod:`core.registry.uploads` has passed; weights
are parsed as safetensors and never unpickled.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.deps import CallerDep, SessionDep, SettingsDep
from app.problems import Problem
from app.ratelimit import upload_rate_limit
from app.responses import ModelVersionOut
from app.routes.models import version_dict
from core.registry import idempotency as idem
from core.registry.keys import Caller
from core.registry.models import VISIBILITIES
from core.registry.publish import register_upload
from core.registry.store import ArtifactStore
from core.registry.unpack import TAR_TYPES, unpack
from core.registry.uploads import UploadError, validate_flow
from core.settings import Settings

router = APIRouter(tags=["models"])
SCOPE = "POST /v1/models"
MEDIA = ("multipart/form-data", "application/zip", *TAR_TYPES)
_DIGITS = re.compile(r"[0-9]+")
_BYTES = {"type": "string", "format": "binary"}
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["model.safetensors", "config.json"],
        "properties": {"model.safetensors": _BYTES, "config.json": _BYTES,
                       "metrics.json": _BYTES, "README.md": _BYTES,
                       "name": {"type": "string"},
                       "visibility": {"type": "string",
                                      "enum": ["private", "group", "public"]}}}},
    "application/zip": {"schema": _BYTES},
    "application/x-tar": {"schema": _BYTES}}}}


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
    declared = request.headers.get("content-length", "")
    if _DIGITS.fullmatch(declared) and (len(declared) > 20 or int(declared) > limit):
        raise _too_large(limit)  # (int() of thousands of digits raises ValueError: a 500)
    h, n = hashlib.sha256(), 0
    with dest.open("wb") as f:
        async for chunk in request.stream():
            n += len(chunk)
            if n > limit:
                raise _too_large(limit)
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


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


@router.post("/models", status_code=201, summary="Upload a flow (validated; never unpickled)",
             dependencies=[Depends(upload_rate_limit)],  # 429 before the body is read
             response_model=ModelVersionOut, openapi_extra=UPLOAD_BODY)
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
    if ctype not in MEDIA:
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
        (tmp / "files").mkdir()
        fields = await run_in_threadpool(unpack, tmp / "body",
                                         request.headers.get("content-type", ""),
                                         tmp / "files", settings.max_upload_bytes)
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

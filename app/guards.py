"""Request guards for POST /v1/jobs, as dependencies: Idempotency-Key in flight (409), a
train spec's ``init_from`` (422 unless it names a visible parent) and per-group quotas
(429 queued jobs, 422 sample volume), each naming the limit.

They read the JSON body themselves (Starlette caches it) and stay silent on a body that
does not validate: the route then answers 422 naming the field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from app.deps import CallerDep, SessionDep, SettingsDep
from app.problems import Problem
from core.jobs.request import JobRequest
from core.registry import catalog, quotas
from core.registry import idempotency as idem
from core.registry import jobs as rows
from core.registry.keys import Caller
from core.registry.warmstart import NoParent, nearest_version
from core.settings import Settings

SCOPE = "POST /v1/jobs"
_request = TypeAdapter(JobRequest)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _not_an_object(message: str) -> Problem:
    return Problem(422, f"body: {message}", slug="invalid-request",
                   errors=[{"field": "body", "message": message}])


async def job_body(request: Request, _caller: CallerDep) -> dict[str, Any]:
    """The body of POST /v1/jobs, parsed only once the key was accepted (a route's own body
    parameter would be parsed before its dependencies, so before the key is checked). Its
    size and depth were bounded before anything read it (:mod:`app.body_limit`)."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_an_object(f"not JSON ({exc}): send a JSON object with 'Content-Type: "
                             "application/json'") from None
    if not isinstance(body, dict):
        raise _not_an_object("send a JSON object with 'Content-Type: application/json' "
                             "(kind, spec, and for train jobs model_name)")
    return body


def job_body_openapi(examples: dict[str, Any]) -> dict[str, Any]:
    """The request body of POST /v1/jobs in OpenAPI (read by :func:`job_body`, not by a
    body parameter): a JSON object, with ``examples``."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "additionalProperties": True,
                   "required": ["kind", "spec"],
                   "properties": {"kind": {"type": "string",
                                           "enum": ["hmc", "train", "sample", "scan"]},
                                  "spec": {"type": "object"},
                                  "model_name": {"type": "string"},
                                  "visibility": {"type": "string",
                                                 "enum": ["private", "group", "public"]}}},
        "examples": examples}}}}


def request_digest(body: Any) -> str:
    """Digest of a request body: the idempotency record's and the job row's request_hash."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def job_idempotency(
    request: Request,
    session: SessionDep,  # the request's own session: no second pooled connection
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> AsyncIterator[None]:
    """409 while the first request with this key is still being handled. Replays and
    mismatches of finished requests are answered by the route from the job row."""
    if not idempotency_key:
        yield
        return
    body = await _body(request)
    digest = request_digest(body)
    outcome = await run_in_threadpool(idem.begin, session, caller.user, SCOPE,
                                      idempotency_key, digest)
    if isinstance(outcome, idem.InProgress):
        raise Problem(409, "a request with this Idempotency-Key is still being processed: "
                      "retry when it has finished", slug="idempotency-in-progress")
    if not isinstance(outcome, idem.Started):
        yield
        return
    try:
        yield
    except BaseException:
        await run_in_threadpool(idem.release, session, caller.user, SCOPE, idempotency_key)
        raise
    await run_in_threadpool(_complete, session, caller.user, idempotency_key)


def _complete(session: Any, user: str, key: str) -> None:
    idem.complete(session, user, SCOPE, key, 202, {})
    session.commit()


def _check_quota(s: Any, settings: Settings, caller: Caller, body: dict[str, Any],
                 key: str | None) -> None:
    try:
        req = _request.validate_python({k: v for k, v in body.items()
                                        if k in ("kind", "spec")})
    except ValidationError:
        return
    if key and rows.find_idempotent(s, caller.user, key) is not None:
        return  # a replay creates nothing
    n = getattr(req.spec, "n_samples", None)
    if n is not None and n > settings.max_n_samples:
        return  # the route names its own limit (max_n_samples) first
    _check_parent(s, caller, req)
    try:
        quotas.check(s, settings, caller, req)
    except quotas.QuotaExceeded as exc:
        raise Problem(exc.status, str(exc), slug="quota-exceeded",
                      title="Quota exceeded" if exc.status == 429 else None,
                      errors=[{"field": exc.field, "message": str(exc)}],
                      headers={"Retry-After": "60"} if exc.status == 429 else None) from None


def _check_parent(session: Any, caller: Caller, req: Any) -> None:
    """A train spec's ``init_from`` must name a version the caller can see (or "nearest"
    must find one), else 422 before anything is queued."""
    ref = getattr(req.spec, "init_from", None) if req.kind == "train" else None
    if not ref:
        return
    if ref == "nearest":
        try:
            nearest_version(session, req.spec.model_dump(mode="json"), caller)
        except NoParent as exc:
            raise Problem(422, str(exc), slug="invalid-spec",
                          errors=[{"field": "spec.init_from", "message": str(exc)}]) from None
    elif catalog.resolve(session, ref, caller) is None:
        msg = (f"init_from={ref!r} is not a model version you can see: use NAME/VERSION from "
               "GET /v1/models, or 'nearest'")
        raise Problem(422, msg, slug="invalid-spec",
                      errors=[{"field": "spec.init_from", "message": msg}])


async def job_quota(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> None:
    body = await _body(request)
    if isinstance(body, dict):
        await run_in_threadpool(_check_quota, session, settings, caller, body, idempotency_key)
        await run_in_threadpool(session.commit)  # hand the connection back (see get_caller)


JobBody = Annotated[dict[str, Any], Depends(job_body)]
IdempotencyGuard = Annotated[None, Depends(job_idempotency, scope="function")]
QuotaGuard = Annotated[None, Depends(job_quota)]

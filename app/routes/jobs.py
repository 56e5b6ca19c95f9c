"""/v1/jobs: submit, list, get, cancel, and follow a job's progress (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from app.deps import CallerDep, CeleryDep, SessionDep, SettingsDep
from app.guards import IdempotencyGuard, JobBody, QuotaGuard, job_body_openapi, request_digest
from app.operations import Operation, OperationList, redact_sources, to_operation
from app.problems import Problem, pydantic_errors, summarize
from app.ratelimit import job_rate_limit
from core.jobs.request import JobRequest
from core.jobs.specs import coarse_sampler_error
from core.registry import catalog
from core.registry import jobs as rows
from core.registry.accounts import resolve_caller
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.registry.models import JOB_STATES, VISIBILITIES, Job
from core.registry.publish import check_target
from core.registry.uploads import UploadError
from core.settings import Settings
from worker.celery_app import TASK_NAME

router = APIRouter(tags=["jobs"])
_request = TypeAdapter(JobRequest)
SERVICE_FIELDS = ("model_name", "visibility")

EXAMPLES = {
    "hmc": {"value": {"kind": "hmc", "spec": {"dim": 2, "L": 16, "kappa": 0.2, "lam": 0.01,
                                               "n_samples": 500}}},
    "train": {"value": {"kind": "train", "model_name": "ir-2d-L8",
                        "spec": {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25,
                                 "lam": 0.01, "steps": 50}}},
    "sample": {"value": {"kind": "sample", "spec": {"model": "ir-2d-L8@best",
                                                    "n_samples": 1000}}},
    "scan": {"value": {"kind": "scan", "spec": {"method": "ir", "dim": 2, "L": 8,
                                                "kappa": [0.2, 0.25, 0.27, 0.3], "lam": 0.01,
                                                "max_minutes_per_point": 5}}},
}


def _invalid(field: str, message: str) -> Problem:
    errors = [{"field": field, "message": message}]
    return Problem(422, summarize(errors), slug="invalid-spec", errors=errors)


def _validate(body: dict[str, Any], settings: Settings, session: Any, caller: Caller) -> Any:
    extra = {k: body.pop(k) for k in SERVICE_FIELDS if k in body}
    try:
        req = _request.validate_python(body)
    except ValidationError as exc:
        errors = pydantic_errors(exc.errors())
        raise Problem(422, summarize(errors), slug="invalid-spec", errors=errors) from None
    vis = extra.get("visibility", "group")
    if vis not in VISIBILITIES:
        raise _invalid("visibility", f"visibility={vis!r}: use private, group or public")
    name = extra.get("model_name")
    if name is not None and (req.kind != "train" or not catalog.NAME_RE.match(str(name))):
        raise _invalid("model_name", f"model_name={name!r}: only for train jobs; letters, "
                       "digits, '.', '_', '+', '-'")
    if name is not None:
        try:  # the same rule as an upload: another group's model takes no versions from us
            check_target(session, str(name), caller)
        except UploadError as exc:
            raise Problem(exc.status, f"model_name={name!r}: {exc.message}",
                          errors=[{"field": "model_name", "message": exc.message}]) from None
    n = getattr(req.spec, "n_samples", None)
    if n is not None and n > settings.max_n_samples:
        raise _invalid("spec.n_samples", f"n_samples={n} exceeds this server's limit "
                       f"max_n_samples={settings.max_n_samples}: split it into several jobs")
    if req.kind == "sample":
        mv = catalog.resolve(session, req.spec.model, caller)
        if mv is None:
            raise _invalid("spec.model", f"model={req.spec.model!r} is not a registered model "
                           "you can see: use NAME, NAME/VERSION or NAME@ALIAS from GET /v1/models")
        coarse_L = (mv.config or {}).get("coarse_L")
        if msg := coarse_sampler_error(req.spec.coarse_sampler, mv.method,
                                       int(coarse_L) if coarse_L is not None else None):
            raise _invalid("spec.coarse_sampler", msg)
    return req, vis, name


@router.post("/jobs", status_code=202, response_model=Operation,
             summary="Submit a job (hmc | train | sample | scan)",
             dependencies=[Depends(job_rate_limit)],  # before the guards: 429 first
             openapi_extra=job_body_openapi(EXAMPLES))
def submit_job(
    body: JobBody,  # parsed after the key was checked (401 first)
    response: Response,
    settings: SettingsDep,
    session: SessionDep,
    caller: CallerDep,
    celery: CeleryDep,
    _in_flight: IdempotencyGuard,  # 409 while the same key is being handled
    _quota: QuotaGuard,  # per-group quotas: 429 / 422 naming the limit
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Operation:
    """Validate the spec (422 names the field), insert the job row (queued), send the task.
    ``model_name`` (train) and ``visibility`` may sit beside ``kind`` and ``spec``."""
    digest = request_digest(body)
    if idempotency_key:
        prior = rows.find_idempotent(session, caller.user, idempotency_key)
        if prior is not None:
            return _replay(prior, digest, response)
    req, vis, name = _validate(dict(body), settings, session, caller)
    spec = req.spec.model_dump(mode="json")
    queue = "gpu" if spec.get("device") == "cuda" else "cpu"
    job_id = str(uuid.uuid4())
    try:
        job = rows.create_job(session, job_id=job_id, kind=req.kind, spec=spec, queue=queue,
                              caller=caller, visibility=vis, idempotency_key=idempotency_key,
                              request_hash=digest if idempotency_key else None,
                              model_name=name)
    except IntegrityError:
        session.rollback()
        prior = rows.find_idempotent(session, caller.user, idempotency_key or "")
        if prior is None:
            raise
        return _replay(prior, digest, response)
    try:
        celery.send_task(TASK_NAME, args=[job_id], task_id=job_id, queue=queue)
    except Exception as exc:
        rows.fail_unsent(session, job_id, f"{type(exc).__name__}: {exc}")
        raise Problem(503, "the job queue (broker) is unreachable; the job was not queued: "
                      "retry later or check SRFLOW_BROKER_URL") from exc
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return to_operation(job)


def _replay(prior: Job, digest: str, response: Response) -> Operation:
    if prior.request_hash != digest:
        raise Problem(422, "this Idempotency-Key was used with a different request body: "
                      "use a new key", slug="idempotency-mismatch",
                      errors=[{"field": "Idempotency-Key", "message": "reused with another body"}])
    response.headers["Location"] = f"/v1/jobs/{prior.id}"
    return to_operation(prior)


@router.get("/jobs", response_model=OperationList, summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    caller: CallerDep,
    settings: SettingsDep,
    kind: Literal["hmc", "train", "sample", "scan"] | None = None,
    state: Annotated[str | None, Query(description=" | ".join(JOB_STATES))] = None,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    page_token: str | None = None,
) -> OperationList:
    if state is not None and state not in JOB_STATES:
        raise _invalid("state", f"state={state!r}: use one of {', '.join(JOB_STATES)}")
    try:
        page = rows.list_jobs(session, caller, kind=kind, state=state,
                              page_size=min(page_size, settings.max_page_size),
                              page_token=page_token)
    except ValueError as exc:
        raise _invalid("page_token", f"{exc}: pass next_page_token unchanged") from None
    return OperationList(operations=[redact_sources(to_operation(j), session, caller)
                                     for j in page.jobs],
                         next_page_token=page.next_page_token)


def _job_or_404(session: Any, job_id: str, caller: Caller) -> Job:
    job = rows.get_job(session, job_id, caller)
    if job is None:
        raise Problem(404, f"no job {job_id!r}: check the id (GET /v1/jobs lists yours)",
                      slug="job-not-found")
    return job


def _visible_job(job_id: str, session: SessionDep, caller: CallerDep) -> Job:
    """404 before a stream starts."""
    return _job_or_404(session, job_id, caller)


async def _stream_slot(request: Request, settings: SettingsDep,
                       caller: CallerDep) -> AsyncIterator[None]:
    """One of the user's ``max_streams_per_user`` concurrent event streams (this process),
    held until the response has been sent; 429 when all are taken. Counted per user: a
    fresh key must not bring fresh streams."""
    counts: dict[str, int] = getattr(request.app.state, "sse_streams", None) or {}
    request.app.state.sse_streams = counts
    key = caller.user
    if counts.get(key, 0) >= settings.max_streams_per_user:
        raise Problem(429, f"this user already follows {counts[key]} event streams, the "
                      f"limit max_streams_per_user={settings.max_streams_per_user}: close one "
                      "first", slug="too-many-streams", headers={"Retry-After": "10"})
    counts[key] = counts.get(key, 0) + 1
    try:
        yield
    finally:
        counts[key] -= 1
        if counts[key] <= 0:
            del counts[key]


def _key_still_valid(factory: Any, request: Request) -> bool:
    _, _, key = request.headers.get("authorization", "").partition(" ")
    with factory() as s:
        return resolve_caller(s, key.strip()) is not None


@router.get("/jobs/{job_id}", response_model=Operation, summary="Get a job")
def get_job(job_id: str, session: SessionDep, caller: CallerDep) -> Operation:
    """A finished job's ``response`` names its outputs with their URLs (``ensemble.url``,
    ``ensemble.download``, ``model.ref``, ``model.url``)."""
    return redact_sources(to_operation(_job_or_404(session, job_id, caller)), session, caller)


@router.post("/jobs/{job_id}:cancel", response_model=Operation, summary="Cancel a job")
def cancel_job(job_id: str, session: SessionDep, caller: CallerDep) -> Operation:
    """Queued jobs are cancelled at once; running ones stop between steps (cooperative)."""
    job = _job_or_404(session, job_id, caller)
    if not caller.is_admin and job.owner != caller.user:
        raise Problem(403, "only the job's owner or an admin can cancel it")
    rows.request_cancel(session, job_id)
    session.expire_all()
    return to_operation(_job_or_404(session, job_id, caller))


@router.get("/jobs/{job_id}/events", response_class=EventSourceResponse,
            summary="Progress as Server-Sent Events until the job is done")
async def job_events(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    caller: CallerDep,
    visible: Annotated[Job, Depends(_visible_job)],
    _slot: Annotated[None, Depends(_stream_slot)],
) -> AsyncIterator[ServerSentEvent]:
    """Events: ``progress`` (the operation, whenever it changes) and a final ``done``.
    The key is re-checked every ``sse_key_recheck_s``: once it is revoked or expired the
    stream ends with an ``error`` event. At most ``max_streams_per_user`` streams per user."""
    factory = session_factory(settings.db_url)
    op = redact_sources(to_operation(visible), session, caller)  # loaded by the 404 check
    # The request's session would hold a pooled connection for the whole stream (hours);
    # each poll below opens and closes its own.
    await run_in_threadpool(session.close)

    def load() -> Operation:
        with factory() as s:
            return redact_sources(to_operation(_job_or_404(s, job_id, caller)), s, caller)

    last = None
    seq = 0
    checked = time.monotonic()
    while True:
        payload = op.model_dump(mode="json")
        key = json.dumps(payload, sort_keys=True)
        if key != last:
            last, seq = key, seq + 1
            yield ServerSentEvent(data=payload, event="done" if op.done else "progress",
                                  id=str(seq))
        if op.done or await request.is_disconnected():
            return
        await asyncio.sleep(settings.sse_poll_s)
        if time.monotonic() - checked >= settings.sse_key_recheck_s:
            checked = time.monotonic()
            if not await run_in_threadpool(_key_still_valid, factory, request):
                yield ServerSentEvent(data={"detail": "the API key was revoked or expired"},
                                      event="error", id=str(seq + 1))
                return
        op = await run_in_threadpool(load)


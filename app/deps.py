"""Request dependencies (``Annotated``): settings, a registry session, the caller, Celery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.problems import Problem
from app.throttle import note_bad_key
from core.registry.accounts import resolve_caller
from core.registry.db import session_factory
from core.registry.keys import Caller
from core.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """The request's registry session. Queries run in the thread pool; the session is
    closed here on the event loop, so a finished request never waits for a free thread to
    hand its pooled connection back (with 40 threads all waiting for a connection, that
    wait deadlocked the pool under bench/load.py's 500 clients). Dependencies that query
    before the route commit for the same reason (get_caller, the quota guard)."""
    session = session_factory(settings.db_url)()
    try:
        yield session
    finally:
        session.close()  # a pool return: a rollback on a local connection, no thread hop


SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(request: Request, session: SessionDep) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(
            401,
            "send your API key as 'Authorization: Bearer KEY' "
            "(get one with 'srflow admin create-key')",
            slug="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="srflow"'},
        )
    caller = resolve_caller(session, key.strip())  # groups from memberships
    # end the read so the pooled connection goes back now: a request that kept it across
    # the thread-pool hops to its route deadlocked the pool under load (bench/load.py:
    # 40 threads waiting for 15 connections held by requests waiting for a thread)
    session.commit()
    if caller is None:
        note_bad_key(request)  # counted against the client address (app.throttle)
        raise Problem(
            401,
            "this API key is unknown, revoked or expired: check SRFLOW_KEY / --key",
            slug="unauthenticated",
            headers={"WWW-Authenticate": 'Bearer realm="srflow", error="invalid_token"'},
        )
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def get_optional_caller(request: Request, settings: SettingsDep) -> Caller | None:
    """The caller if a valid key was sent, else None (no 401): for routes that answer
    anyone but tell authenticated callers more. A database error reads as no caller."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    try:
        with session_factory(settings.db_url)() as session:
            caller = resolve_caller(session, key.strip())
    except Exception:
        return None
    if caller is None:
        note_bad_key(request)  # a wrong key reads as anonymous here, but still counts
    return caller


OptionalCallerDep = Annotated[Caller | None, Depends(get_optional_caller)]


def get_celery(request: Request) -> Any:
    return request.app.state.celery


CeleryDep = Annotated[Any, Depends(get_celery)]

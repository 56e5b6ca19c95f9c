"""Load shedding: a request that finds every pooled database connection busy for
``db_pool_timeout_s`` (SQLAlchemy's pool ``TimeoutError``) is answered at once with
503 + ``Retry-After`` as problem+json, instead of queueing until the client times out.

The pool is bounded per process on PostgreSQL (``db_pool_size`` + ``db_max_overflow``,
core/settings.py); SQLite's pool never makes a request wait (core/registry/db.py).

The pool, not the thread pool, must be what requests queue for. A request keeps its pooled
connection across a thread hop (FastAPI validates a sync route's response in a worker
thread before the request's session is closed), so with anyio's default 40 threads, 40
threads waiting for a connection and the requests holding every connection waiting for a
thread deadlock until the pool times out — on PostgreSQL under bench/load.py's 500 clients
almost every request then timed out. :func:`size_threads` gives each process ``api_threads``
threads (at least its requests in flight; idle threads cost little and are made on demand).
"""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.problems import Problem, problem_response

RETRY_AFTER_S = 2
log = logging.getLogger("srflow.api")


def overloaded() -> Problem:
    return Problem(503, "the service is busy: every database connection of this process is "
                   f"in use; retry after {RETRY_AFTER_S} s", slug="overloaded",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


def size_threads(threads: int) -> None:
    """Let this event loop run ``threads`` blocking calls at once (call it in the loop)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = threads


def install(app: FastAPI) -> None:
    @app.exception_handler(PoolTimeout)
    async def _shed(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.warning("shed %s %s: database pool exhausted (%s)", request.method,
                    request.url.path, exc)
        return problem_response(request, overloaded())

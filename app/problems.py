"""RFC 9457 problem details (``application/problem+json``) for every error the API returns.

Shape: ``{type, title, status, detail, instance, errors: [{field, message}]}``; ``field`` is
a dotted path into the request (``spec.L``, ``spec.n_samples``, ``kind``, ``page_token``).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

PROBLEM_JSON = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Missing or invalid API key",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    422: "Invalid request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


_STR = {"type": "string"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ProblemDetails",
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": _STR, "title": _STR, "status": {"type": "integer"}, "detail": _STR,
        "instance": _STR,
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": _STR, "message": _STR}}},
    },
}


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the problem+json errors every route may answer
    (FastAPI's default 422 body is replaced: ours is a problem document too)."""
    return {status: {"description": title, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
            for status, title in TITLES.items() if 400 <= status < 600 and status != 500}


class Problem(Exception):
    """Raise anywhere in a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.slug = slug or TITLES.get(status, "error").lower().replace(" ", "-")
        self.title = title or TITLES.get(status, "Error")


def problem_response(request: Request, p: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{p.slug}",
        "title": p.title,
        "status": p.status,
        "detail": p.detail,
        "instance": request.url.path,
    }
    if p.errors:
        body["errors"] = p.errors
    return JSONResponse(body, status_code=p.status, media_type=PROBLEM_JSON, headers=p.headers)


async def send_problem(scope: Scope, receive: Receive, send: Send, p: Problem) -> None:
    """Answer with a problem document from ASGI middleware, before any route runs."""
    await problem_response(Request(scope), p)(scope, receive, send)


_FIELD_IN_MSG = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def pydantic_errors(errors: list[Any], prefix: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Pydantic error list → [{field, message}], naming the field even for errors raised by
    model validators (whose message starts with ``NAME=``) and dropping union tags."""
    out = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
        if loc and loc[0] in ("hmc", "train", "sample", "scan") and len(loc) > 1:
            loc = loc[1:]  # the discriminated-union tag
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        etype = err.get("type", "")
        if etype in ("union_tag_not_found", "union_tag_invalid"):
            loc = ["kind"]
            msg = f"{msg}: use kind = hmc, train or sample, or scan for a coupling scan"
        m = _FIELD_IN_MSG.match(msg)
        if m and (not loc or loc[-1] != m.group(1)):
            loc = [*loc, m.group(1)]
        if etype == "dict_type" and not loc:
            msg = "send a JSON object with 'Content-Type: application/json'"
        elif (loc and not m and etype not in ("missing", "extra_forbidden")
              and isinstance(err.get("input"), int | float | str)):
            msg = f"{loc[-1]}={err['input']!r}: {msg}"
        if etype == "extra_forbidden" and loc:
            msg = f"unknown field {loc[-1]!r}: check the spelling (fields are the CLI flags)"
        elif etype == "missing" and loc:
            msg = f"{loc[-1]} is required"
        field = ".".join([*prefix, *loc]) or "body"
        out.append({"field": field, "message": msg})
    return out


def summarize(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field']}: {e['message']}" for e in errors)


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = []
        for e in exc.errors():
            loc = tuple(e.get("loc", ()))
            errs.append({**e, "loc": loc[1:] if loc and loc[0] in ("body", "query",
                                                                     "path", "header") else loc})
        errors = pydantic_errors(errs)
        detail = summarize(errors)
        return problem_response(request, Problem(422, detail, slug="invalid-request",
                                                 errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}: see /docs for the API"
        return problem_response(
            request, Problem(exc.status_code, detail, headers=getattr(exc, "headers", None))
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        return problem_response(
            request,
            Problem(500, f"internal error ({type(exc).__name__}); the server log has details"),
        )

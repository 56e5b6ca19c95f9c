"""Request bodies are bounded before anything reads them (pure ASGI middleware).

FastAPI reads and parses a JSON body before a route's dependencies run, so without a limit
a 30 MiB POST /v1/jobs without a key was parsed (and the API's memory doubled) before it
was answered 401. Here, before authentication and before parsing:

- a ``Content-Length`` over ``max_request_bytes`` is answered 413 without reading a byte;
- a body without one is counted as it arrives and cut off at the limit (413);
- a body nested deeper than :data:`core.registry.json_depth.MAX_JSON_DEPTH` arrays/objects
  is answered 422 (every encoder and decoder after this recurses once per level).

The body is then handed to the app unchanged (at most ``max_request_bytes`` held). Uploads
(``POST /v1/models``) stream to disk under their own limit, ``max_upload_bytes``, and are
checked by their route (:mod:`app.routes.uploads`).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import Problem, send_problem
from core.registry.json_depth import MAX_JSON_DEPTH, DepthScanner

STREAMED = (("POST", "/v1/models"),)  # routes that bound their own (large) bodies
_DIGITS = re.compile(r"[0-9]+")


def too_large(limit: int) -> Problem:
    msg = f"over max_request_bytes={limit}"
    return Problem(413, f"the request body exceeds this server's limit max_request_bytes="
                   f"{limit}: send less (a job is a small JSON object; flows are uploaded "
                   "to POST /v1/models)", slug="body-too-large",
                   errors=[{"field": "body", "message": msg}])


def too_deep() -> Problem:
    msg = (f"JSON nested deeper than {MAX_JSON_DEPTH} arrays/objects: send a flatter body "
           "(a job spec nests 2 levels)")
    return Problem(422, f"body: {msg}", slug="invalid-request",
                   errors=[{"field": "body", "message": msg}])


class BodyLimitMiddleware:
    """413 over ``max_bytes``, 422 nested too deep; else the app gets the body unchanged."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in STREAMED:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if _DIGITS.fullmatch(declared) and (len(declared) > 20
                                            or int(declared) > self.max_bytes):
            await send_problem(scope, receive, send, too_large(self.max_bytes))
            return
        chunks: list[bytes] = []
        size = 0
        depth = DepthScanner()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_problem(scope, receive, send, too_large(self.max_bytes))
                return
            if not depth.feed(chunk):
                await send_problem(scope, receive, send, too_deep())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: bytes | None = b"".join(chunks)

        async def replay() -> Message:
            nonlocal body
            if body is not None:
                message, body = {"type": "http.request", "body": body, "more_body": False}, None
                return message
            return await receive()  # after the body: disconnects (event streams)

        await self.app(scope, replay, send)

"""Streams an API response (an event stream, a download) to the browser unchanged, as the
signed-in user: the API decides who may see it."""

from __future__ import annotations

from fastapi.responses import Response, StreamingResponse

from app.ui.api import ApiResponse
from app.ui.web import Ctx, api_error_page

PASS_HEADERS = ("content-type", "content-length", "content-disposition", "etag",
                "repr-digest", "accept-ranges", "content-range", "x-weights-sha256",
                "cache-control")


async def proxy(ctx: Ctx, path: str, what: str) -> Response:
    forward = {k: v for k, v in ctx.request.headers.items()
               if k.lower() in ("range", "if-range", "last-event-id", "accept")}
    stream = await ctx.api.open("GET", path, headers=forward)
    if stream.status >= 400:
        body = await stream.read()
        return api_error_page(ctx, ApiResponse(stream.status, stream.headers, body), what)
    headers = {k: v for k, v in stream.headers.items() if k in PASS_HEADERS}
    if headers.get("content-type", "").startswith("text/event-stream"):
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"  # nginx: do not buffer the stream
    return StreamingResponse(stream.chunks(), status_code=stream.status, headers=headers)

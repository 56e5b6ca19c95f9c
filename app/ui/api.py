"""The dashboard calls the JSON API in-process, as the signed-in user.

Each call is an ASGI request into the same FastAPI app with ``Authorization: Bearer KEY``,
so visibility (404 for other groups' objects), permissions (403), validation (422 naming
the field), idempotency, quotas and rate limits are the API's own, not re-implemented.
Responses may be streamed (Server-Sent Events, downloads): httpx's ASGI transport waits
for the whole body, which an event stream never finishes, hence this small adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.throttle import INTERNAL

ASGIApp = Any
Message = dict[str, Any]


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def problem(self) -> dict[str, Any]:
        """The RFC 9457 document of an error (``{}`` for a non-JSON body)."""
        try:
            doc = self.json()
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}


class ApiStream:
    """One in-flight request into the app; :meth:`start` waits for the status line."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any], body: bytes) -> None:
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._body: bytes | None = body
        self.status = 500
        self.headers: dict[str, str] = {}
        self._task = asyncio.create_task(self._run(app, scope))

    async def _receive(self) -> Message:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        await self._queue.put(message)

    async def _run(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self._receive, self._send)
        except Exception:  # the app's error middleware has already answered 500
            pass
        finally:
            await self._queue.put({"type": "srflow.end"})

    async def start(self) -> None:
        msg = await self._queue.get()
        if msg["type"] == "http.response.start":
            self.status = int(msg["status"])
            self.headers = {k.decode().lower(): v.decode() for k, v in msg.get("headers", [])}
        else:  # ended without answering
            await self._queue.put(msg)

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                msg = await self._queue.get()
                if msg["type"] == "http.response.body":
                    if msg.get("body"):
                        yield bytes(msg["body"])
                    if not msg.get("more_body", False):
                        return
                elif msg["type"] == "srflow.end":
                    return
        finally:
            self._gone.set()  # first, without awaiting: the browser may already be gone
            await self.close()

    async def read(self) -> bytes:
        return b"".join([c async for c in self.chunks()])

    async def close(self) -> None:
        """Tell the app the client went away and wait (briefly) for it to stop."""
        self._gone.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _scope(method: str, path: str, query: dict[str, Any] | None,
           headers: dict[str, str]) -> dict[str, Any]:
    qs = urlencode({k: v for k, v in (query or {}).items() if v not in (None, "")})
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": qs.encode(),
        "root_path": "", "client": ("127.0.0.1", 0), "server": ("srflow-ui", 80),
        INTERNAL: True,  # a signed-in key: not a guess to throttle (app.throttle)
        "headers": [(k.lower().encode(), v.encode()) for k, v in
                    {"host": "srflow-ui", **headers}.items()],
    }


class Api:
    """The JSON API, as the user whose key this is."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self._auth = {"authorization": f"Bearer {key}"}

    async def open(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                   body: Any = None, headers: dict[str, str] | None = None) -> ApiStream:
        hdrs = {**self._auth, **(headers or {})}
        raw = b""
        if body is not None:
            raw = json.dumps(body).encode()
            hdrs["content-type"] = "application/json"
            hdrs["content-length"] = str(len(raw))
        stream = ApiStream(self.app, _scope(method, path, query, hdrs), raw)
        await stream.start()
        return stream

    async def call(self, method: str, path: str, *, query: dict[str, Any] | None = None,
                   body: Any = None, headers: dict[str, str] | None = None) -> ApiResponse:
        stream = await self.open(method, path, query=query, body=body, headers=headers)
        data = await stream.read()
        return ApiResponse(stream.status, stream.headers, data)

    async def get(self, path: str, **query: Any) -> ApiResponse:
        return await self.call("GET", path, query=query)

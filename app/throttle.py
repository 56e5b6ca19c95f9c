"""Failed sign-ins and unknown API keys, throttled per client address (pure ASGI).

Every attempt to authenticate — a request to ``/v1/…`` that carries an ``Authorization``
header, a ``POST /ui/signin`` — is counted against its client address when it fails: the
API refused the key (:func:`note_bad_key`, set by :mod:`app.deps`, also where a route
answers anyone and a wrong key only reads as anonymous) or the sign-in page answered 401.
An address may fail ``auth_failures_burst`` times at once; ``auth_failures_per_minute``
failures are forgiven a minute (a token bucket). Beyond that every attempt from the
address — a right key too, so the throttle is no oracle — is answered 429 problem+json
with ``Retry-After`` before the key is looked at. Requests without a credential (the
anonymous health check, dashboard pages with a session cookie) are never held back, and
the dashboard's in-process API calls (:data:`INTERNAL`) carry a key that already signed in.

The buckets live in this process (with N uvicorn workers an address gets N times the
allowance, a soft limit like the rate limits); the client address is the one uvicorn
reports (behind a proxy, run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import Problem, send_problem
from app.token_bucket import TokenBucket

BAD_KEY = "srflow.bad_key"  # scope flag: a key was sent and refused
INTERNAL = "srflow.internal"  # scope flag: the dashboard calling the API in process
SIGN_IN = ("POST", "/ui/signin")
MAX_ADDRESSES = 100_000


def note_bad_key(request: Request) -> None:
    """Record on the request that the key it sent was refused (counted as a failure)."""
    request.scope[BAD_KEY] = True


@dataclass
class FailureBuckets:
    """Failures per client address: a token bucket of ``burst`` refilled at
    ``per_minute``; an attempt is let through while a token is left."""

    burst: int
    per_minute: float
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _refilled(self, address: str, now: float) -> TokenBucket | None:
        b = self.buckets.get(address)
        if b is not None:
            b.refill(now, self.burst, self.per_minute)
        return b

    def wait(self, address: str, now: float | None = None) -> float:
        """Seconds until the address may try again (0.0: now)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            b = self._refilled(address, now)
            return 0.0 if b is None else b.wait(self.per_minute)

    def fail(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self.lock:
            b = self._refilled(address, now)
            if b is None:
                if len(self.buckets) >= MAX_ADDRESSES:  # forget the forgiven ones first
                    rate = self.per_minute / 60
                    self.buckets = {a: x for a, x in self.buckets.items()
                                    if x.tokens + (now - x.stamp) * rate < self.burst}
                    if len(self.buckets) >= MAX_ADDRESSES:
                        self.buckets.clear()
                b = self.buckets[address] = TokenBucket(float(self.burst), now)
            b.tokens = max(b.tokens - 1.0, 0.0)


def is_attempt(scope: Scope) -> bool:
    """Does this request try to authenticate (a key to the API, a dashboard sign-in)?"""
    if scope.get(INTERNAL):
        return False
    if (scope["method"], scope["path"]) == SIGN_IN:
        return True
    return str(scope["path"]).startswith("/v1/") and "authorization" in Headers(scope=scope)


class AuthThrottleMiddleware:
    """429 for addresses past their failures; counts the failures of the others."""

    def __init__(self, app: ASGIApp, burst: int, per_minute: float) -> None:
        self.app = app
        self.buckets = FailureBuckets(burst, per_minute)

    def too_many(self, wait: float) -> Problem:
        retry = max(1, math.ceil(wait))
        return Problem(429, "too many failed sign-ins or unknown API keys from this address "
                       f"(auth_failures_burst={self.buckets.burst}, "
                       f"{self.buckets.per_minute:g} forgiven a minute): check the key "
                       f"(SRFLOW_KEY / --key) and retry in {retry} s",
                       slug="too-many-failed-sign-ins", headers={"Retry-After": str(retry)})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_attempt(scope):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else ""
        wait = self.buckets.wait(address)
        if wait > 0.0:
            await send_problem(scope, receive, send, self.too_many(wait))
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            signed_in_wrong = (scope["method"], scope["path"]) == SIGN_IN and status == 401
            if scope.get(BAD_KEY) or signed_in_wrong:
                self.buckets.fail(address)

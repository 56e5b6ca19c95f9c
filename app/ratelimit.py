"""Per-user rate limits: a small in-process token bucket per user and scope.

A bucket holds at most ``burst`` tokens and refills at ``per_minute / 60`` tokens a
second; each request takes one, and an empty bucket answers 429 problem+json with
``Retry-After`` (whole seconds until a token is back). Buckets live on the app's state,
so they are per API process: with N uvicorn workers a user gets N times the rate (a soft
limit, like the quotas). The bucket is the user's, not the key's: a user may mint keys,
and a fresh key must not come with a fresh bucket. Settings: ``rate_jobs_per_minute``/
``rate_jobs_burst`` for ``POST /v1/jobs``, ``rate_uploads_per_minute``/
``rate_uploads_burst`` for uploads.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from app.deps import CallerDep, SettingsDep
from app.problems import Problem
from app.token_bucket import TokenBucket

MAX_BUCKETS = 100_000  # forget idle buckets beyond this many (full ones first)


@dataclass
class Limiter:
    """Token buckets keyed by (scope, user)."""

    buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, scope: str, key: str, per_minute: float, burst: int,
             now: float | None = None) -> float:
        """Take one token: 0.0 if allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self.lock:
            b = self.buckets.get((scope, key))
            if b is None:
                if len(self.buckets) >= MAX_BUCKETS:
                    self.buckets.clear()  # a flood of keys: start everyone full again
                b = self.buckets[(scope, key)] = TokenBucket(float(burst), now)
            b.refill(now, burst, per_minute)
            wait = b.wait(per_minute)
            if wait == 0.0:
                b.tokens -= 1.0
            return wait


def _limiter(request: Request) -> Limiter:
    limiter = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        limiter = request.app.state.rate_limiter = Limiter()
    return limiter  # type: ignore[no-any-return]


def _check(request: Request, scope: str, key: str, per_minute: float, burst: int,
           what: str) -> None:
    wait = _limiter(request).take(scope, key, per_minute, burst)
    if wait > 0.0:
        retry = max(1, math.ceil(wait))
        raise Problem(429, f"too many {what} by this user: the limit is {per_minute:g} a "
                      f"minute (bursts of {burst}); retry in {retry} s",
                      slug="rate-limited", headers={"Retry-After": str(retry)})


def job_rate_limit(request: Request, settings: SettingsDep, caller: CallerDep) -> None:
    """``POST /v1/jobs``: ``rate_jobs_per_minute`` per user, bursts of ``rate_jobs_burst``."""
    _check(request, "jobs", caller.user, settings.rate_jobs_per_minute,
           settings.rate_jobs_burst, "job submissions")


def upload_rate_limit(request: Request, settings: SettingsDep, caller: CallerDep) -> None:
    """Uploads: ``rate_uploads_per_minute`` per user, bursts of ``rate_uploads_burst``."""
    _check(request, "uploads", caller.user,
           settings.rate_uploads_per_minute, settings.rate_uploads_burst, "uploads")


JobRateLimit = Annotated[None, Depends(job_rate_limit)]
UploadRateLimit = Annotated[None, Depends(upload_rate_limit)]

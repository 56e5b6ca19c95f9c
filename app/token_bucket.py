"""A token bucket: at most ``burst`` tokens, refilled at ``per_minute`` a minute.

Shared by the per-user rate limits (:mod:`app.ratelimit`: a request takes a token) and
the per-address sign-in throttle (:mod:`app.throttle`: a failure takes one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    tokens: float
    stamp: float

    def refill(self, now: float, burst: int, per_minute: float) -> None:
        """Add the tokens earned since the last stamp, up to ``burst``."""
        self.tokens = min(float(burst), self.tokens + (now - self.stamp) * per_minute / 60.0)
        self.stamp = now

    def wait(self, per_minute: float) -> float:
        """Seconds until a whole token is there (0.0: one is)."""
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) * 60.0 / per_minute

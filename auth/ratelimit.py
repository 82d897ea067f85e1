"""Per-IP rate limit of the credential endpoints (token, sign-in), on top of account lockout.

Account lockout stops guessing one account's password; this stops one address from
spraying guesses over many accounts. A token bucket per client address: ``burst``
requests at once, refilled at ``per_minute``. It lives in the process (each auth replica
counts on its own, so N replicas allow N times the rate — still bounded, and lockout,
kept in the database, is shared). Time comes from the platform clock, so tests move it.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from services.clock import utcnow
from services.errors import TooManyRequests

RATE_LIMITER_KEY = "auth_rate_limiter"


class RateLimited(TooManyRequests):
    """429 with ``Retry-After``."""

    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Demasiadas solicitudes de acceso desde su dirección; "
            f"intente de nuevo en {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets keyed by client address (bounded number of addresses kept)."""

    def __init__(self, *, per_minute: int, burst: int, max_keys: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.rate > 0

    def hit(self, key: str) -> None:
        """Spend one request of ``key``'s budget, or raise :class:`RateLimited`."""
        if not self.enabled:
            return
        now = utcnow().timestamp()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets[key] = bucket  # most recently used last
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens < 1:
                raise RateLimited(max(1, math.ceil((1 - bucket.tokens) / self.rate)))
            bucket.tokens -= 1


def client_address(host: str | None) -> str:
    """The key of the caller (uvicorn already applied a trusted ``X-Forwarded-For``)."""
    return host or "unknown"

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


@dataclass
class _Failures:
    count: int
    locked_until: float | None


class LoginLockouts:
    """Account lockout per (username, client address), kept in the process.

    A lock closes the account to the address that guessed, not to everyone: whoever can
    reach the sign-in page cannot lock a real person out by typing her username, and the
    person herself (from her own address) signs in as before. The per-address rate limit
    above bounds how fast one address guesses over many accounts. Like that limit, each
    auth replica counts on its own (N replicas: N times the attempts, still bounded).
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._entries: OrderedDict[tuple[str, str], _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def is_locked(self, username: str, address: str) -> bool:
        now = utcnow().timestamp()
        with self._lock:
            entry = self._entries.get((username, address))
            return bool(entry and entry.locked_until and entry.locked_until > now)

    def failed(self, username: str, address: str, *, limit: int, lock_seconds: float) -> bool:
        """Count a failure; True when it locks the pair now."""
        now = utcnow().timestamp()
        with self._lock:
            key = (username, address)
            entry = self._entries.pop(key, None) or _Failures(0, None)
            if entry.locked_until and entry.locked_until <= now:
                entry = _Failures(0, None)
            entry.count += 1
            locked_now = entry.count >= limit
            if locked_now:
                entry = _Failures(0, now + lock_seconds)
            self._entries[key] = entry
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
            return locked_now

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._entries.pop((username, address), None)


LOCKOUTS = LoginLockouts()

"""Per-client-address limit on failed credential checks (token endpoint, sign-in form).

Account lockout (``auth.service``) stops guessing one account's password; this stops one
address from trying many accounts (password spraying) or hammering client secrets. Only
failures count, so a busy office behind one address is never slowed by its own successful
sign-ins. The state lives in the process (each replica counts its own), bounded in size.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import timedelta

from fastapi import Request

from auth.config import auth_settings
from services.clock import utcnow
from services.errors import TooManyRequests

STATE_KEY = "auth_failure_limiter"
MAX_TRACKED_ADDRESSES = 10_000


class FailureLimiter:
    """A sliding window of failure times per client address."""

    def __init__(self, *, max_failures: int, window: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        now = utcnow().timestamp()
        times = self._failures.get(address)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window.total_seconds():
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def check(self, address: str) -> None:
        """Raise 429 while ``address`` has used up its failures for the window."""
        times = self._recent(address)
        if len(times) >= self.max_failures:
            wait = times[0] + self.window.total_seconds() - utcnow().timestamp()
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                "Demasiados intentos fallidos desde esta dirección; espere "
                f"{seconds} segundos antes de volver a intentarlo.",
                headers={"Retry-After": str(seconds)},
            )

    def record_failure(self, address: str) -> None:
        times = self._recent(address)
        times.append(utcnow().timestamp())
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_TRACKED_ADDRESSES:
            self._failures.popitem(last=False)


def client_address(request: Request) -> str:
    """The caller's address (uvicorn puts the forwarded one here behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def limiter_for(request: Request) -> FailureLimiter:
    """The app's limiter (one per app, so tests and processes do not share counts)."""
    limiter: FailureLimiter | None = getattr(request.app.state, STATE_KEY, None)
    if limiter is None:
        cfg = auth_settings()
        limiter = FailureLimiter(
            max_failures=cfg.max_failures_per_address,
            window=timedelta(seconds=cfg.failure_window_seconds),
        )
        setattr(request.app.state, STATE_KEY, limiter)
    return limiter

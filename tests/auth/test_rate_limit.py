"""Per-address rate limit of the token endpoint and the sign-in form (frozen clock)."""

from __future__ import annotations

from datetime import timedelta

import httpx

from auth.ratelimit import RateLimited, RateLimiter
from services.clock import clock
from tests.auth.conftest import password_form
from tests.conftest import running


def _client(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_token_and_sign_in_answer_429_per_address_until_the_bucket_refills(make_app):
    clock.freeze()
    app = make_app(CANALIZA_AUTH_RATE_LIMIT_BURST="3", CANALIZA_AUTH_RATE_LIMIT_PER_MINUTE="6")
    async with (
        running(app),
        _client(app, "203.0.113.7") as attacker,
        _client(app, "198.51.100.20") as colleague,
    ):
        # Failed and successful attempts both spend the budget.
        for form in (password_form("fiscal", "x"), password_form("dif", "y")):
            r = await attacker.post("/auth/token", data=form)
            assert r.status_code == 400
        r = await attacker.post("/auth/token", data=password_form("inm"))
        assert r.status_code == 200
        r = await attacker.post("/auth/token", data=password_form("inm"))
        assert r.status_code == 429
        assert r.json()["error"] == "rate_limited" and "intente" in r.json()["detail"]
        assert r.headers["retry-after"] == "10"  # one request per 10 s at 6/min
        # The sign-in form shares the address's budget.
        r = await attacker.post("/auth/authorize", data={"username": "ceav"})
        assert r.status_code == 429 and r.headers["retry-after"] == "10"
        # Another address is not affected.
        r = await colleague.post("/auth/token", data=password_form("ceav"))
        assert r.status_code == 200

        clock.advance(timedelta(seconds=9))
        r = await attacker.post("/auth/token", data=password_form("inm"))
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        clock.advance(timedelta(seconds=1))
        r = await attacker.post("/auth/token", data=password_form("inm"))
        assert r.status_code == 200
        r = await attacker.post("/auth/token", data=password_form("inm"))
        assert r.status_code == 429
        # Discovery and keys are never limited.
        assert (await attacker.get("/auth/jwks")).status_code == 200


def test_limiter_is_bounded_and_can_be_turned_off():
    clock.freeze()
    limiter = RateLimiter(per_minute=60, burst=1, max_keys=2)
    for address in ("a", "b", "c"):
        limiter.hit(address)
    assert list(limiter._buckets) == ["b", "c"]  # the oldest address was forgotten
    limiter.hit("a")  # a fresh bucket again
    try:
        limiter.hit("a")
    except RateLimited as exc:
        assert exc.status_code == 429 and exc.headers == {"Retry-After": "1"}
    else:
        raise AssertionError("second hit within the second must be limited")
    off = RateLimiter(per_minute=0, burst=0)
    for _ in range(1000):
        off.hit("a")

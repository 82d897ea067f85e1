"""Service-to-service calls: client-credentials tokens, renewal, retries, clean 503s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from services.clients import ClientCredentials, ServiceClient
from services.errors import ServiceUnavailable
from services.settings import Settings


class _Runtime:
    """Just what the clients use of a runtime: settings, state and how to reach a service."""

    def __init__(self, handlers: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.settings = Settings(service_client_id="svc", service_client_secret="s3cret")
        self.state: dict[str, Any] = {}
        self.handlers = handlers

    def transport_for(self, service: str) -> tuple[str, httpx.AsyncBaseTransport]:
        return f"http://{service}", httpx.MockTransport(self.handlers[service])


class _Capacity(ServiceClient):
    service = "capacity"


def _auth(issued: list[str]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=") for x in request.content.decode().split("&"))
        assert form["grant_type"] == "client_credentials" and form["client_id"] == "svc"
        issued.append(f"token-{len(issued) + 1}")
        return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 900})

    return handler


async def test_a_refused_token_is_renewed_once_and_the_call_repeated() -> None:
    issued: list[str] = []
    seen: list[str] = []

    def capacity(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if request.headers["authorization"] == "Bearer token-1":  # say, a rotated key
            return httpx.Response(401, json={"error": "invalid_token", "detail": "x"})
        return httpx.Response(200, json={"ok": True})

    runtime = _Runtime({"auth": _auth(issued), "capacity": capacity})
    client = _Capacity(runtime)  # type: ignore[arg-type]
    # Not idempotent (one attempt): a 401 did nothing, so it may still be sent again.
    resp = await client.request("POST", "/api/v1/pools/p/ledger", json={}, idempotent=False)
    assert resp.status_code == 200
    assert seen == ["Bearer token-1", "Bearer token-2"] and issued == ["token-1", "token-2"]
    # The new token is kept for the next calls.
    assert (await client.request("GET", "/api/v1/pools/p")).status_code == 200
    assert issued == ["token-1", "token-2"]


async def test_a_token_refused_twice_is_the_callers_401_not_a_loop() -> None:
    issued: list[str] = []
    calls: list[int] = []

    def capacity(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401, json={"error": "invalid_token", "detail": "x"})

    client = _Capacity(_Runtime({"auth": _auth(issued), "capacity": capacity}))  # type: ignore[arg-type]
    resp = await client.request("GET", "/api/v1/pools/p")
    assert resp.status_code == 401 and len(calls) == 2 and len(issued) == 2


async def test_auth_down_is_retried_then_a_clean_503() -> None:
    attempts: list[int] = []

    def auth(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("refused", request=request)

    credentials = ClientCredentials(_Runtime({"auth": auth}))  # type: ignore[arg-type]
    with pytest.raises(ServiceUnavailable) as err:
        await credentials.token()
    assert len(attempts) == 3
    assert err.value.status_code == 503 and err.value.code == "auth_unavailable"


async def test_auth_back_after_a_blip_gives_the_token() -> None:
    attempts: list[int] = []
    issued: list[str] = []
    ok = _auth(issued)

    def auth(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return httpx.Response(503, json={"error": "service_unavailable", "detail": "x"})
        return ok(request)

    credentials = ClientCredentials(_Runtime({"auth": auth}))  # type: ignore[arg-type]
    assert await credentials.token() == "token-1"
    assert len(attempts) == 2

"""Typed service-to-service clients.

One client per service API, defined here by the wire contract (its own pydantic models),
never by importing the other service's code. Calls go over HTTP with a client-credentials
token when the services run apart, and through an ASGI transport when they share a process.
Idempotent calls are retried with back-off; a dependency that is down is a clean 503.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from services.app import Runtime
from services.errors import CanalizaError, ServiceUnavailable
from services.observability import current_request_id

RETRYABLE_STATUS = {502, 503, 504}
TOKEN_ATTEMPTS = 3


class ClientCredentials:
    """Fetches and caches a client-credentials access token from the auth service."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (a service refused it: say the signing key was rotated)."""
        if self._token == token:
            self._token = None

    async def token(self) -> str:
        if self._token and time.monotonic() < self._expires_at - 30:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at - 30:
                return self._token
            settings = self.runtime.settings
            base, transport = self.runtime.transport_for("auth")
            async with httpx.AsyncClient(base_url=base, transport=transport, timeout=5) as c:
                delay = 0.1
                for attempt in range(TOKEN_ATTEMPTS):  # issuing a token is safe to repeat
                    try:
                        resp = await c.post(
                            "/auth/token",
                            data={
                                "grant_type": "client_credentials",
                                "client_id": settings.service_client_id,
                                "client_secret": settings.service_client_secret,
                            },
                        )
                    except httpx.TransportError as exc:
                        if attempt == TOKEN_ATTEMPTS - 1:
                            raise ServiceUnavailable(
                                "El servicio de identidad no responde.", code="auth_unavailable"
                            ) from exc
                    else:
                        if resp.status_code not in RETRYABLE_STATUS:
                            break
                    if attempt < TOKEN_ATTEMPTS - 1:
                        await asyncio.sleep(delay)
                        delay *= 3
            if resp.status_code != 200:
                raise ServiceUnavailable(
                    "El servicio no pudo autenticarse ante el servicio de identidad.",
                    code="service_auth_failed",
                )
            body = resp.json()
            self._token = body["access_token"]
            self._expires_at = time.monotonic() + float(body.get("expires_in", 300))
            return self._token


class ServiceClient:
    """Base class of the typed clients: one other service, reached the configured way."""

    service = ""

    def __init__(
        self,
        runtime: Runtime,
        *,
        credentials: ClientCredentials | None = None,
        timeout: float = 5.0,
        retries: int = 3,
    ) -> None:
        self.runtime = runtime
        self.credentials = credentials or runtime.state.setdefault(
            "client_credentials", ClientCredentials(runtime)
        )
        self.timeout = timeout
        self.retries = retries

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        """Call the service; retries only idempotent calls; errors become domain errors."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE") or bool(
                headers and "Idempotency-Key" in headers
            )
        base, transport = self.runtime.transport_for(self.service)
        token = await self.credentials.token()
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        # The request being served travels with the call, so logs line up across services.
        request_id = request_id or current_request_id()
        if request_id:
            all_headers["X-Request-ID"] = request_id
        attempts = self.retries if idempotent else 1
        delay = 0.1
        last_exc: Exception | None = None
        renewed = False
        async with httpx.AsyncClient(base_url=base, transport=transport, timeout=self.timeout) as c:
            for attempt in range(attempts):
                try:
                    resp = await c.request(
                        method, path, json=json, params=params, headers=all_headers
                    )
                    if (
                        resp.status_code == 401
                        and not renewed
                        and hasattr(self.credentials, "invalidate")
                    ):
                        # Our token was refused (expired early, or its key was rotated):
                        # nothing was done, so ask for a new one and send the call once more.
                        renewed = True
                        self.credentials.invalidate(token)
                        token = await self.credentials.token()
                        all_headers["Authorization"] = f"Bearer {token}"
                        resp = await c.request(
                            method, path, json=json, params=params, headers=all_headers
                        )
                except httpx.TransportError as exc:
                    last_exc = exc
                else:
                    if resp.status_code not in RETRYABLE_STATUS or attempt == attempts - 1:
                        return resp
                if attempt < attempts - 1:
                    await asyncio.sleep(delay)
                    delay *= 3
        raise ServiceUnavailable(
            f"El servicio {self.service} no responde; intente de nuevo.",
            code="dependency_unavailable",
        ) from last_exc

    @staticmethod
    def raise_for_error(resp: httpx.Response) -> None:
        """Re-raise another service's 4xx/5xx as a domain error with its code and detail."""
        if resp.status_code < 400:
            return
        try:
            body = resp.json()
        except ValueError:
            body = {}
        err = CanalizaError(
            str(body.get("detail") or resp.reason_phrase),
            code=str(body.get("error") or "dependency_error"),
        )
        err.status_code = resp.status_code if resp.status_code < 500 else 503
        raise err

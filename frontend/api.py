"""Calls from the frontend to the other services, with the signed-in user's token.

Every call goes through ``Runtime.transport_for``: in-process ASGI in the main job, the
service's URL when the services run apart. Errors arrive as ``{"error", "detail"}`` and
are raised as :class:`ApiError` for the page to show; nothing here leaks a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from services.app import Runtime
from services.pages import NEXT_CURSOR_HEADER

log = logging.getLogger("canaliza.frontend")

TIMEOUT = httpx.Timeout(15.0, connect=3.0)


class ApiError(Exception):
    """An answer other than 2xx from a service (or none at all)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status = status
        self.error = error
        self.detail = detail


class NotSignedIn(Exception):
    """The session has no usable token (never signed in, expired, or revoked)."""


def client_for(runtime: Runtime, service: str) -> httpx.AsyncClient:
    base, transport = runtime.transport_for(service)
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=TIMEOUT)


async def call(
    runtime: Runtime,
    service: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    **kw: Any,
) -> httpx.Response:
    """One request to ``service``; transport failures become a 503 :class:`ApiError`."""
    headers = dict(kw.pop("headers", None) or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with client_for(runtime, service) as client:
            return await client.request(method, path, headers=headers, **kw)
    except (httpx.TransportError, RuntimeError) as exc:
        log.warning("call to %s %s failed: %s", service, path, exc)
        raise ApiError(503, "service_unavailable", "") from exc


def raise_for_answer(resp: httpx.Response) -> None:
    if resp.is_success:
        return
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    raise ApiError(
        resp.status_code, str(body.get("error") or "error"), str(body.get("detail") or "")
    )


TokenSource = Callable[[], Awaitable[str]]


# A screen reads at most this many pages of one list (500 rows each at most).
MAX_PAGES = 200


class Api:
    """The signed-in user's view of the platform's APIs."""

    def __init__(self, runtime: Runtime, token: TokenSource) -> None:
        self.runtime = runtime
        self._token = token

    async def _answer(self, service: str, method: str, path: str, **kw: Any) -> httpx.Response:
        token = await self._token()
        resp = await call(self.runtime, service, method, path, token=token, **kw)
        if resp.status_code == 401:
            raise NotSignedIn
        raise_for_answer(resp)
        return resp

    async def request(self, service: str, method: str, path: str, **kw: Any) -> Any:
        resp = await self._answer(service, method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return None
        return resp.json()

    async def get_page(self, service: str, path: str, **kw: Any) -> tuple[list[Any], str | None]:
        """One page of a keyset list and the cursor of the next (its ``X-Next-Cursor``
        header; ``None`` on the last page)."""
        resp = await self._answer(service, "GET", path, **kw)
        items: list[Any] = resp.json()
        return items, resp.headers.get(NEXT_CURSOR_HEADER)

    async def get_every(
        self, service: str, path: str, *, items: str | None = None, **kw: Any
    ) -> list[Any]:
        """Every row of a paged list, page after page by its ``X-Next-Cursor`` (``items``:
        the key of the body's list, when the body is not the list itself)."""
        params = dict(kw.pop("params", None) or {})
        rows: list[Any] = []
        for _ in range(MAX_PAGES):
            resp = await self._answer(service, "GET", path, params=params, **kw)
            body = resp.json()
            rows.extend(body[items] if items else body)
            cursor = resp.headers.get(NEXT_CURSOR_HEADER)
            if not cursor:
                break
            params = {**params, "cursor": cursor}
        return rows

    async def get(self, service: str, path: str, **kw: Any) -> Any:
        return await self.request(service, "GET", path, **kw)

    async def post(self, service: str, path: str, **kw: Any) -> Any:
        return await self.request(service, "POST", path, **kw)

    async def delete(self, service: str, path: str, **kw: Any) -> Any:
        return await self.request(service, "DELETE", path, **kw)

    async def gather(self, *calls: Awaitable[Any]) -> list[Any]:
        """Several calls at once; the first error wins."""
        return list(await asyncio.gather(*calls))

"""The gateway: one public port in front of services that run apart.

A small ASGI reverse proxy. It routes each request by path prefix to the service that
owns it, spreads requests round-robin over a service's replicas, and moves on to the
next replica when one refuses the connection (nothing was sent, so any method is safe to
retry). Bodies are bounded and buffered (so a refused connection can be retried);
answers are streamed. WebSockets (``/api/v1/capacity/live``) are proxied frame by frame.
The gateway answers ``/openapi.json`` (the services' documents merged) and ``/docs``
itself; ``/`` and every path no service owns go to the frontend (the web UI) when
``CANALIZA_FRONTEND_URL`` is set, and ``/`` redirects to ``/docs`` when it is not.

Upstreams come from the ``CANALIZA_<SERVICE>_URL`` settings, each a comma-separated list
of base URLs (``http://cap1:8000,http://cap2:8000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import RedirectResponse
from starlette.types import Message, Receive, Scope, Send
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from services.aio import until_first_done
from services.apidocs import merge_openapi
from services.errors import error_response
from services.observability import IN_FLIGHT, LATENCY, REQUESTS, access_log, request_id_var
from services.settings import SERVICE_NAMES, Settings, get_settings

log = logging.getLogger("canaliza.gateway")

# The services close an idle keep-alive connection after 30 s (the launcher's
# KEEP_ALIVE_SECONDS); the gateway drops its idle upstream connections much sooner, so a
# forwarded POST never races that close (a reset there cannot be retried: it would reach
# the client as a 503).
UPSTREAM_LIMITS = httpx.Limits(
    max_connections=200, max_keepalive_connections=50, keepalive_expiry=2.0
)

# Longest prefix wins; paths of the public contract, by owning service.
ROUTES: tuple[tuple[str, str], ...] = (
    ("/.well-known/", "auth"),
    ("/auth/", "auth"),
    ("/api/v1/capacity/", "capacity"),
    ("/api/v1/facilities", "capacity"),
    ("/api/v1/pools", "capacity"),
    ("/api/v1/availability/", "capacity"),
    ("/api/v1/holds", "capacity"),
    ("/api/v1/institutions", "referral"),
    ("/api/v1/agreements", "referral"),
    ("/api/v1/referrals", "referral"),
    ("/api/v1/audit/", "audit"),
    ("/api/v1/reports/", "audit"),
    ("/", "frontend"),
)

# Answered by the gateway itself: its health and metrics, and the platform's API docs.
OWN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
)
OPENAPI_CACHE_SECONDS = 300.0

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)


@dataclass
class Upstream:
    """The replicas of one service, taken in turn."""

    service: str
    urls: list[str]
    _turn: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.urls)))

    def order(self) -> list[str]:
        """Every replica once, starting with the next in turn."""
        start = next(self._turn)
        return self.urls[start:] + self.urls[:start]


def upstreams_from_settings(settings: Settings) -> dict[str, Upstream]:
    """``CANALIZA_<SERVICE>_URL`` (comma-separated replicas) of every service, and the UI."""
    found: dict[str, Upstream] = {}
    for service in (*SERVICE_NAMES, "frontend"):
        raw = str(getattr(settings, f"{service}_url", "") or "")
        urls = [u.strip().rstrip("/") for u in raw.split(",") if u.strip()]
        if urls:
            found[service] = Upstream(service, urls)
    return found


def service_for(path: str) -> str | None:
    """The service owning ``path`` (longest matching prefix)."""
    best: tuple[int, str] | None = None
    for prefix, service in ROUTES:
        bare = prefix.rstrip("/")
        if (path == bare or path.startswith(bare + "/")) and (
            best is None or len(prefix) > best[0]
        ):
            best = (len(prefix), service)
    return best[1] if best else None


class Gateway:
    """The reverse proxy as an ASGI app."""

    def __init__(
        self,
        upstreams: dict[str, Upstream] | None = None,
        *,
        settings: Settings | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.upstreams = (
            upstreams if upstreams is not None else upstreams_from_settings(self.settings)
        )
        self.timeout = timeout
        self.client: httpx.AsyncClient | None = None
        self._openapi: tuple[float, dict[str, Any]] | None = None

    # --- ASGI entry ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = httpx.AsyncClient(
                    timeout=httpx.Timeout(self.timeout, connect=2.0),
                    limits=UPSTREAM_LIMITS,
                    follow_redirects=False,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _client(self) -> httpx.AsyncClient:
        if self.client is None:  # served without lifespan (tests through ASGITransport)
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=2.0), limits=UPSTREAM_LIMITS
            )
        return self.client

    # --- HTTP ------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        path: str = scope["path"]
        method: str = scope["method"]
        started = time.perf_counter()
        status = 500
        route = "<unmatched>"
        gauge = IN_FLIGHT.labels("gateway")
        gauge.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            if path in OWN_PATHS:
                route = path
                await self._own(path, scope, receive, send_status)
                return
            service = service_for(path)
            upstream = self.upstreams.get(service or "")
            route = f"<{service}>" if service else route
            if upstream is None and path == "/":
                # No web UI in this installation: the API's documentation is the front page.
                route = "/"
                await RedirectResponse("/docs", status_code=307)(scope, receive, send_status)
                return
            if upstream is None:
                await error_response(
                    404, "not_found", "No existe ese recurso en esta instalación."
                )(scope, receive, send_status)
                return
            declared = headers.get(b"content-length", b"").decode("latin-1").strip()
            too_long = declared.isdigit() and int(declared) > self.settings.max_body_bytes
            # A declared length over the limit is refused unread; a body streamed without one
            # is read only up to the limit.
            body = None if too_long else await self._read_body(receive)
            if body is None:
                await error_response(
                    413,
                    "payload_too_large",
                    f"El cuerpo de la petición excede {self.settings.max_body_bytes} bytes.",
                )(scope, _no_receive, send_status)
                return
            await self._forward(scope, upstream, body, request_id, send_status)
        finally:
            elapsed = time.perf_counter() - started
            gauge.dec()
            REQUESTS.labels("gateway", method, route, str(status)).inc()
            LATENCY.labels("gateway", method, route).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "service": "gateway",
                    "method": method,
                    "path": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it grows past ``max_body_bytes``."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _forward_headers(self, scope: Scope, request_id: str) -> list[tuple[bytes, bytes]]:
        out = [(k, v) for k, v in scope.get("headers") or [] if k.lower() not in HOP_BY_HOP]
        out = [(k, v) for k, v in out if k.lower() != b"x-request-id"]
        client = scope.get("client")
        out.append((b"x-request-id", request_id.encode("latin-1")))
        if client:
            out.append((b"x-forwarded-for", str(client[0]).encode("latin-1")))
        out.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode("latin-1")))
        host = dict(scope.get("headers") or []).get(b"host")
        if host:
            out.append((b"x-forwarded-host", host))
        return out

    async def _forward(
        self, scope: Scope, upstream: Upstream, body: bytes, request_id: str, send: Send
    ) -> None:
        client = self._client()
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        headers = self._forward_headers(scope, request_id)
        for base in upstream.order():
            request = client.build_request(
                scope["method"], base + target, headers=headers, content=body
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError:
                # Refused or unreachable: the request never left, so another replica may take it.
                log.warning("replica %s of %s refused the connection", base, upstream.service)
                continue
            except httpx.TimeoutException:
                await error_response(
                    504, "gateway_timeout", f"El servicio {upstream.service} tardó demasiado."
                )(scope, _no_receive, send)
                return
            except httpx.TransportError as exc:
                log.warning("replica %s of %s failed: %r", base, upstream.service, exc)
                await self._unavailable(scope, upstream.service, send)
                return
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (k, v)
                            for k, v in response.headers.raw
                            if k.lower() not in HOP_BY_HOP and k.lower() != b"x-request-id"
                        ],
                    }
                )
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                await response.aclose()
            return
        await self._unavailable(scope, upstream.service, send)

    async def _unavailable(self, scope: Scope, service: str, send: Send) -> None:
        await error_response(
            503,
            "service_unavailable",
            f"El servicio {service} no está disponible; intente de nuevo en unos momentos.",
        )(scope, _no_receive, send)

    async def _own(self, path: str, scope: Scope, receive: Receive, send: Send) -> None:
        if path == "/metrics":
            await Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)(scope, receive, send)
            return
        if path == "/healthz":
            await JSONResponse({"status": "ok"})(scope, receive, send)
            return
        if path == "/docs":
            html = get_swagger_ui_html(
                openapi_url="/openapi.json",
                title="Canaliza — API",
                oauth2_redirect_url="/docs/oauth2-redirect",
            )
            await html(scope, receive, send)
            return
        if path == "/docs/oauth2-redirect":
            await get_swagger_ui_oauth2_redirect_html()(scope, receive, send)
            return
        if path == "/openapi.json":
            spec = await self.openapi()
            if spec is None:
                await error_response(
                    503,
                    "service_unavailable",
                    "Ningún servicio respondió; la documentación de la API no está disponible.",
                )(scope, _no_receive, send)
                return
            await JSONResponse(spec)(scope, receive, send)
            return
        checks = await self.readiness()
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if not ready:
            body.update(error="service_unavailable", detail="Un servicio no responde.")
        await JSONResponse(body, status_code=200 if ready else 503)(scope, receive, send)

    async def openapi(self) -> dict[str, Any] | None:
        """The services' OpenAPI documents merged into one; ``None`` if none answers.

        Kept for a while once every service contributed; fetched again on the next call
        while one is missing, so a service that comes back shows up by itself.
        """
        cached = self._openapi
        if cached is not None and time.monotonic() - cached[0] < OPENAPI_CACHE_SECONDS:
            return cached[1]
        client = self._client()

        async def fetch(upstream: Upstream) -> dict[str, Any] | None:
            for base in upstream.order():
                try:
                    resp = await client.get(base + "/openapi.json", timeout=5.0)
                except httpx.HTTPError:
                    continue
                if resp.status_code == 200:
                    with contextlib.suppress(ValueError):
                        body = resp.json()
                        if isinstance(body, dict):
                            return body
            return None

        names = [n for n in SERVICE_NAMES if n in self.upstreams]
        found = await asyncio.gather(*(fetch(self.upstreams[n]) for n in names))
        specs = {n: spec for n, spec in zip(names, found, strict=True) if spec is not None}
        if not specs:
            return None
        missing = [n for n in names if n not in specs]
        merged = merge_openapi(
            specs,
            description="Canaliza: capacidad de refugios y canalización de víctimas de trata.",
            missing=missing,
        )
        self._openapi = None if missing else (time.monotonic(), merged)
        return merged

    async def readiness(self) -> dict[str, str]:
        """Each service is ready when at least one of its replicas answers ``/readyz``."""
        client = self._client()

        async def probe(base: str) -> bool:
            try:
                resp = await client.get(base + "/readyz", timeout=2.0)
            except httpx.HTTPError:
                return False
            return resp.status_code == 200

        checks: dict[str, str] = {}
        for name, upstream in self.upstreams.items():
            results = await asyncio.gather(*(probe(u) for u in upstream.urls))
            # Degraded (some replicas down) is still ready: the others take the load.
            checks[name] = "ok" if any(results) else "down"
        return checks

    # --- WebSocket -------------------------------------------------------------------

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        upstream = self.upstreams.get(service_for(scope["path"]) or "")
        first = await receive()  # websocket.connect
        if first["type"] != "websocket.connect" or upstream is None:
            await send({"type": "websocket.close", "code": 4404})
            return
        query = scope.get("query_string", b"").decode("latin-1")
        remote = None
        origin, headers = _websocket_forward_headers(scope)
        for base in upstream.order():
            url = "ws" + base.removeprefix("http") + scope["path"] + (f"?{query}" if query else "")
            try:
                remote = await connect(
                    url, open_timeout=5, origin=origin, additional_headers=headers
                )
                break
            except Exception as exc:  # refused, timed out, or the upgrade was declined
                log.warning("replica %s of %s: websocket failed: %s", base, upstream.service, exc)
                continue
        if remote is None:
            await send({"type": "websocket.close", "code": 1013})  # try again later
            return
        await send({"type": "websocket.accept"})

        client_gone = False

        async def client_to_remote() -> None:
            nonlocal client_gone
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    client_gone = True
                    await remote.close()
                    return
                data = message.get("text")
                await remote.send(data if data is not None else message.get("bytes") or b"")

        async def remote_to_client() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for data in remote:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})

        try:
            await until_first_done(client_to_remote(), remote_to_client())
        finally:
            await remote.close()
        if not client_gone:
            code, reason = upstream_close(remote.close_code, remote.close_reason)
            with contextlib.suppress(Exception):
                await send({"type": "websocket.close", "code": code, "reason": reason})


# Close codes a peer never sends: the replica vanished (killed, crashed, network cut).
ABNORMAL_CLOSE = frozenset({None, 1005, 1006, 1015})


def upstream_close(code: int | None, reason: str | None) -> tuple[int, str]:
    """The close to pass on to the client when the replica's socket ended.

    A replica that closed properly passes its code on; one that vanished becomes 1001
    (servidor detenido), which tells a live-feed client to reconnect (here, to another
    replica) and resume from its last sequence.
    """
    if code in ABNORMAL_CLOSE:
        return 1001, "servidor detenido"
    return int(code or 1000), reason or ""


def _websocket_forward_headers(scope: Scope) -> tuple[Any, list[tuple[str, str]]]:
    """What the upstream needs to judge a browser's WebSocket: its Origin, cookies, host."""
    raw = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
    headers = [(name, raw[name]) for name in ("cookie", "user-agent") if name in raw]
    if "host" in raw:
        headers.append(("x-forwarded-host", raw["host"]))
    secure = scope.get("scheme") in ("wss", "https")
    headers.append(("x-forwarded-proto", "https" if secure else "http"))
    origin = Origin(raw["origin"]) if "origin" in raw else None
    return origin, headers


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_gateway(settings: Settings | None = None) -> Gateway:
    """The gateway for this process's settings (uvicorn factory target)."""
    return Gateway(settings=settings)

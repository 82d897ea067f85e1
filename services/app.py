"""The app factory: one FastAPI app from one or more service specs.

``canaliza serve all`` builds one app from every service (the embedded default);
``canaliza serve capacity`` builds one from a single spec. The code paths are the same:
the same routers, the same error model, the same typed clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.at_rest import protect_data_dir
from services.bus import Bus
from services.bus_factory import create_bus
from services.db import ServiceDatabase
from services.errors import error_response, install_error_handlers
from services.events import Event, Outbox
from services.observability import ObservabilityMiddleware, metrics_router
from services.relay import OutboxRelay
from services.security import authenticate, configure_verifier, get_verifier, make_verifier
from services.settings import Settings, get_settings
from services.tokens import RemoteKeySource, RevocationList

log = logging.getLogger("canaliza.app")

INTERNAL_BASE_URL = "http://canaliza.internal"

Hook = Callable[["Runtime"], Awaitable[None]]


# The cyclic collector's thresholds in a process that serves or bulk-loads. CPython's default
# young threshold (700 net container allocations) collects in the middle of every request's
# object graph: a batch of 1,000 historical referrals (its body, its models, its rows) is
# still alive at each young collection, so it is promoted, and the promotions set off a
# full collection every second or so (the 25 % rule), each walking ~400,000 objects for
# 0.15–0.3 s. With 20,000 the batch is mostly garbage before the first collection of its
# generation (ADR 0033, update 1).
COLLECTOR_THRESHOLDS = (20_000, 20, 10)


def tune_collector() -> None:
    """Give this process the collector thresholds of a server or a bulk load.

    For a process that serves (``canaliza serve``) or loads (``canaliza seed``); not for
    tests, which keep CPython's defaults."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


async def freeze_startup_heap(runtime: Runtime) -> None:
    """A served process's last start-up hook: what start-up built (modules, routes, mappers,
    caches: about 290,000 objects for ``all``) moves to the collector's permanent generation
    (``gc.freeze``), so no later collection walks it again. Under the 200-user mixed load
    a full collection of that heap stopped every thread for 0.5–0.65 s (ADR 0033).

    Not for tests, which build many apps in one process: frozen objects are never
    collected, so their cycles would stay in memory."""
    await asyncio.sleep(0)  # the other start-up hooks' tasks have begun
    freeze_heap()


def freeze_heap() -> None:
    """Collect, then move every object left to the collector's permanent generation
    (``gc.freeze``): no later collection walks them again."""
    gc.collect()
    gc.freeze()


@dataclass
class ServiceSpec:
    """What a domain package contributes to an app."""

    name: str
    routers: list[APIRouter] = field(default_factory=list)
    public_routers: list[APIRouter] = field(default_factory=list)
    database: ServiceDatabase | None = None
    outbox: Outbox | None = None
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)
    description: str = ""
    # ASGI middleware the service needs (class, options), e.g. a session cookie for a
    # sign-in flow; added innermost, in order, before the kernel's own.
    middleware: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Runtime:
    """What a running app holds: settings, bus, relays, and how to reach other services."""

    settings: Settings
    services: dict[str, ServiceSpec]
    app: FastAPI
    bus: Bus | None = None
    relays: dict[str, OutboxRelay] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    revocations: RevocationList = field(default_factory=RevocationList)

    def has(self, service: str) -> bool:
        return service in self.services

    def transport_for(self, service: str) -> tuple[str, httpx.AsyncBaseTransport | None]:
        """Base URL and transport to call ``service``: in-process when it is mounted here."""
        if service in self.services:
            return INTERNAL_BASE_URL, httpx.ASGITransport(app=self.app)
        url = getattr(self.settings, f"{service}_url", "") or ""
        if not url:
            raise RuntimeError(
                f"service {service!r} is not in this process and CANALIZA_{service.upper()}_URL "
                "is not set"
            )
        return url.rstrip("/"), None

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """Run a background task for the app's lifetime."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.append(task)
        return task


REVOCATION_SUBJECT = "canaliza.auth.token.revoked"


def _revocation_handler(revocations: RevocationList) -> Callable[[Event], Awaitable[None]]:
    async def handle(event: Event) -> None:
        kind, payload = event.payload.get("token_type"), event.payload
        if kind == "access_token":
            exp = payload.get("exp")
            revocations.add(event.aggregate_id, exp if isinstance(exp, int) else None)
        elif kind == "refresh_token" and isinstance(payload.get("sid"), str):
            until = payload.get("until")
            revocations.add_family(payload["sid"], until if isinstance(until, int) else None)

    return handle


def get_runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
# JSON answers are never cached by browsers or proxies (they may name victims).
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class RequestContextMiddleware:
    """Request id and security headers on every answer; oversized requests refused early.

    Bodies over ``max_body_bytes`` get 413 (read no further than the limit), query strings
    over ``max_query_bytes`` 414, header blocks over ``max_header_bytes`` 431 — before any
    handler, body parsing or token check runs.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_query_bytes: int = 8_192,
        max_header_bytes: int = 81_920,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_query_bytes = max_query_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers") or []
        headers = dict(raw_headers)
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        refusal = self._refusal(scope, raw_headers, headers.get(b"content-length"))
        if refusal is not None:
            await refusal(scope, receive, self._with_headers(send, scope, request_id))
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge(self.max_body_bytes)
            return message

        send_with_id = self._with_headers(send, scope, request_id)
        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            resp = error_response(
                413,
                "payload_too_large",
                f"El cuerpo de la petición excede {self.max_body_bytes} bytes.",
            )
            await resp(scope, receive, send_with_id)

    def _refusal(
        self, scope: Scope, raw_headers: list[tuple[bytes, bytes]], length: bytes | None
    ) -> JSONResponse | None:
        if len(scope.get("query_string") or b"") > self.max_query_bytes:
            return error_response(
                414,
                "uri_too_long",
                f"La cadena de consulta excede {self.max_query_bytes} bytes.",
            )
        if sum(len(k) + len(v) for k, v in raw_headers) > self.max_header_bytes:
            return error_response(
                431,
                "headers_too_large",
                f"Los encabezados exceden {self.max_header_bytes} bytes.",
            )
        if length is not None and not length.isdigit():
            return error_response(400, "bad_request", "Content-Length no es un número.")
        if length is not None and int(length) > self.max_body_bytes:
            return error_response(
                413,
                "payload_too_large",
                f"El cuerpo de la petición excede {self.max_body_bytes} bytes.",
            )
        return None

    @staticmethod
    def _with_headers(send: Send, scope: Scope, request_id: str) -> Send:
        is_api = str(scope.get("path", "")).startswith(("/api/", "/auth/", "/.well-known/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                hdrs = list(message.get("headers", []))
                present = {name.lower() for name, _ in hdrs}
                hdrs.append((b"x-request-id", request_id.encode("latin-1")))
                extra = SECURITY_HEADERS + (API_HEADERS if is_api else ())
                hdrs.extend((k, v) for k, v in extra if k not in present)
                message["headers"] = hdrs
            await send(message)

        return send_with_headers


class _BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body (chunked, no Content-Length) past the limit.

    An HTTP exception so that FastAPI's body parsing re-raises it as it is (it turns any
    other exception into a 400 "error parsing the body") and the error handler renders 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"El cuerpo de la petición excede {limit} bytes.")


def _health_router(runtime_getter: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: databases and bus reachable")
    async def readyz() -> JSONResponse:
        runtime = runtime_getter()
        checks: dict[str, str] = {}
        for name, spec in runtime.services.items():
            if spec.database is None:
                continue
            try:
                await run_in_threadpool(spec.database.ping)
                checks[f"db:{name}"] = "ok"
            except Exception as exc:
                checks[f"db:{name}"] = f"down: {type(exc).__name__}"
        if runtime.bus is not None:
            checks["bus"] = "ok" if await runtime.bus.healthy() else "down"
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if not ready:
            body.update(error="service_unavailable", detail="Una dependencia no responde.")
        return JSONResponse(body, status_code=200 if ready else 503)

    return router


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "Código de máquina"},
        "detail": {"type": "string", "description": "Explicación para las personas usuarias"},
    },
    "additionalProperties": True,
}


def _document_error_model(app: FastAPI) -> None:
    """Make the OpenAPI tell the truth about errors.

    FastAPI documents 422 as its own ``{"detail": [...]}`` body, which this platform never
    sends, and documents no other 4xx. Every operation gets the contract's error body for
    every 4xx (``4XX``).
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = FastAPI.openapi(app)
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR_SCHEMA
        error = {
            "description": "Error del cliente: cuerpo `{error, detail}`",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for code in [c for c in responses if c.startswith("4")]:
                    del responses[code]
                responses["4XX"] = error
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def service_label(specs: list[ServiceSpec]) -> str:
    """The ``service`` of metrics and logs: the one service, or ``a+b`` when composed."""
    return "+".join(spec.name for spec in specs) or "none"


def create_app(
    specs: list[ServiceSpec],
    settings: Settings | None = None,
    *,
    title: str = "Canaliza",
    bus: Bus | None = None,
    extra_startup: list[Hook] | None = None,
) -> FastAPI:
    """Build one app serving ``specs``."""
    settings = settings or get_settings()
    by_name = {spec.name: spec for spec in specs}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime: Runtime = app.state.runtime
        # umask 077; the data directory and every file in it (an older installation's too)
        # readable by this user only, before any database or key file is opened.
        await run_in_threadpool(protect_data_dir, settings)
        if settings.auto_migrate:
            for spec in specs:
                if spec.database is not None:
                    await run_in_threadpool(spec.database.migrate)
        runtime.bus = bus or create_bus(
            settings.bus,
            url=settings.nats_url,
            stream=settings.nats_stream,
            subject_prefix=settings.nats_subject_prefix,
        )
        await runtime.bus.start()
        # Every app learns of revoked access tokens, replaying what the stream still holds.
        revocation_feed = await runtime.bus.subscribe(
            REVOCATION_SUBJECT,
            _revocation_handler(runtime.revocations),
            deliver_from=await runtime.bus.first_sequence(),
        )
        for spec in specs:
            if spec.database is not None and spec.outbox is not None:
                relay = OutboxRelay(spec.database, spec.outbox, runtime.bus)
                relay.start()
                runtime.relays[spec.name] = relay
        for spec in specs:
            for hook in spec.on_startup:
                await hook(runtime)
        for hook in extra_startup or []:
            await hook(runtime)
        try:
            yield
        finally:
            for spec in reversed(specs):
                for hook in spec.on_shutdown:
                    with contextlib.suppress(Exception):
                        await hook(runtime)
            for task in runtime.tasks:
                task.cancel()
            for task in runtime.tasks:
                with contextlib.suppress(BaseException):
                    await task
            runtime.tasks.clear()
            for relay in runtime.relays.values():
                await relay.stop()
            runtime.relays.clear()
            await revocation_feed.close()
            await runtime.bus.close()

    app = FastAPI(
        title=title,
        version="0.1.0",
        description="Canaliza: capacidad de refugios y canalización de víctimas de trata.",
        lifespan=lifespan,
    )
    runtime = Runtime(settings=settings, services=by_name, app=app)
    app.state.runtime = runtime
    install_error_handlers(app)
    for spec in specs:
        for middleware_class, options in spec.middleware:
            app.add_middleware(middleware_class, **options)
    _document_error_model(app)
    # Added first, so it runs inside RequestContextMiddleware and sees the request id.
    app.add_middleware(ObservabilityMiddleware, service=service_label(specs))
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_query_bytes=settings.max_query_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.include_router(_health_router(lambda: runtime))
    app.include_router(metrics_router())
    for spec in specs:
        for router in spec.public_routers:
            app.include_router(router)
        for router in spec.routers:
            app.include_router(router, dependencies=[Depends(authenticate)])

    # Tokens are checked against the auth service: in-process when it is mounted here.
    if "auth" in by_name and not settings.jwks_url:
        configure_verifier(
            make_verifier(
                RemoteKeySource(
                    f"{INTERNAL_BASE_URL}/auth/jwks", transport=httpx.ASGITransport(app=app)
                )
            )
        )
    else:
        get_verifier()
    return app

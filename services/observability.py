"""Metrics, structured logs and the request id of the current request.

Every app serves Prometheus metrics at ``/metrics`` (request count and latency per
method, route template and status; requests in flight) and writes one JSON log line per
request. Only route templates are recorded — never the concrete path, query, headers or
bodies — so ids, tokens, names and addresses never reach metrics or logs. The request id
of the request being served lives in a contextvar, so outgoing service calls forward it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "canaliza_request_id", default=None
)

access_log = logging.getLogger("canaliza.access")

# Module-level: prometheus_client refuses to register a metric name twice in a process,
# and tests build many apps. The ``service`` label tells the apps apart.
REQUESTS = Counter(
    "canaliza_http_requests_total",
    "HTTP requests answered.",
    ["service", "method", "route", "status"],
)
LATENCY = Histogram(
    "canaliza_http_request_duration_seconds",
    "HTTP request latency.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "canaliza_http_requests_in_flight",
    "HTTP requests being served.",
    ["service"],
)

UNMATCHED_ROUTE = "<unmatched>"


def current_request_id() -> str | None:
    """The id of the request this code is serving, if any."""
    return request_id_var.get()


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/pools/{pool_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else UNMATCHED_ROUTE


class ObservabilityMiddleware:
    """Counts, times and logs each HTTP request; exposes its request id to the code."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (scope.get("state") or {}).get("request_id")
        token = request_id_var.set(request_id)
        method = scope.get("method", "GET")
        status = 500
        started = time.perf_counter()
        gauge = IN_FLIGHT.labels(self.service)
        gauge.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            gauge.dec()
            route = route_template(scope)
            REQUESTS.labels(self.service, method, route, str(status)).inc()
            LATENCY.labels(self.service, method, route).observe(elapsed)
            access_log.info(
                "request",
                extra={
                    "service": self.service,
                    "method": method,
                    "path": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "request_id": request_id,
                },
            )
            request_id_var.reset(token)


def metrics_router() -> APIRouter:
    """``GET /metrics`` in the Prometheus text format (public, like the health checks)."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extra fields."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            entry["service"] = self.service
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


# A path's query string, inside a log message ("GET /x?token=…", "WebSocket /live?…").
_QUERY = re.compile(r"(/[^\s\"'?]*)\?[^\s\"']*")
SERVER_LOGGERS = ("uvicorn.error", "uvicorn.access")


def strip_query_strings(text: str) -> str:
    """``text`` with every URL's query string dropped (it may carry a token)."""
    return _QUERY.sub(r"\1", text)


class DropQueryStrings(logging.Filter):
    """Rewrites a server log record without query strings (uvicorn logs a WebSocket's path
    with its query, and an access line's too): a token in a URL never reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = strip_query_strings(message), None
        return True


def configure_logging(service: str, level: int = logging.INFO) -> None:
    """Send every ``canaliza.*`` log record to stderr as JSON lines (idempotent); the
    server's own loggers drop query strings."""
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        if not any(isinstance(f, DropQueryStrings) for f in server_logger.filters):
            server_logger.addFilter(DropQueryStrings())
    logger = logging.getLogger("canaliza")
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if getattr(handler, "_canaliza_json", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler._canaliza_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False

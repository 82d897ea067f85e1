"""The gateway against small upstreams served by uvicorn in threads (no cluster needed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from canaliza.cluster import free_port
from canaliza.gateway import Gateway, Upstream, upstream_close
from services.settings import Settings


async def _echo_http(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "path": request.url.path,
            "query": request.url.query,
            "body": (await request.body()).decode(),
            "request_id": request.headers.get("x-request-id"),
            "port": request.url.port,
        }
    )


async def _echo_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        if text == "bye":
            await websocket.close(4000, "reconectar")
            return
        await websocket.send_text(f"echo:{text}")


upstream_app = Starlette(
    routes=[
        Route("/api/v1/pools/{rest:path}", _echo_http, methods=["GET", "POST"]),
        WebSocketRoute("/api/v1/capacity/live", _echo_ws),
    ]
)


def _serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    return server, thread


@pytest.fixture
def gateway_url() -> Iterator[str]:
    dead = free_port()  # nobody listens here: connections are refused
    live = free_port()
    gw_port = free_port()
    gateway = Gateway(
        {"capacity": Upstream("capacity", [f"http://127.0.0.1:{dead}", f"http://127.0.0.1:{live}"])}
    )
    servers = [_serve(upstream_app, live), _serve(gateway, gw_port)]
    try:
        yield f"http://127.0.0.1:{gw_port}"
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)


def test_requests_fail_over_from_a_refusing_replica_and_keep_their_body(gateway_url):
    for i in range(4):  # round robin starts on the dead replica at least twice
        r = httpx.post(
            f"{gateway_url}/api/v1/pools/p1/ledger?x={i}",
            content=f"body-{i}",
            headers={"X-Request-ID": f"rid-{i}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["body"] == f"body-{i}"
        assert r.json()["query"] == f"x={i}"
        assert r.json()["request_id"] == f"rid-{i}"
        assert r.headers["x-request-id"] == f"rid-{i}"


def test_unknown_service_is_a_clean_404(gateway_url):
    r = httpx.get(f"{gateway_url}/api/v1/referrals")
    assert r.status_code == 404
    assert set(r.json()) == {"error", "detail"}


def test_websockets_are_proxied(gateway_url):
    from websockets.sync.client import connect

    with connect(gateway_url.replace("http", "ws") + "/api/v1/capacity/live") as ws:
        ws.send('{"type": "auth"}')
        assert ws.recv(timeout=10) == 'echo:{"type": "auth"}'
        ws.send("second")
        assert ws.recv(timeout=10) == "echo:second"


def test_a_replica_closing_its_socket_passes_the_code_on(gateway_url):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(gateway_url.replace("http", "ws") + "/api/v1/capacity/live") as ws:
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "reconectar")


def test_a_replica_that_vanished_is_a_1001_to_the_client():
    # 1006 (no close frame: killed) may not be sent on the wire; the client is told
    # "servidor detenido" and reconnects, which the gateway sends to another replica.
    assert upstream_close(1006, "") == (1001, "servidor detenido")
    assert upstream_close(None, None) == (1001, "servidor detenido")
    assert upstream_close(1013, "lento") == (1013, "lento")


def _service_app(prefix: str, model_field: str) -> Any:
    from fastapi import FastAPI
    from pydantic import create_model

    item = create_model("Item", **{model_field: (str, ...)})  # type: ignore[call-overload]
    app = FastAPI()

    @app.get(f"/api/v1/{prefix}", response_model=item)
    def read() -> Any:
        return {model_field: "x"}

    return app


async def _ui_page(request: Request) -> HTMLResponse:
    return HTMLResponse(f"<h1>Canaliza UI</h1><p>{request.url.path}</p>")


ui_app = Starlette(routes=[Route("/", _ui_page), Route("/entrar", _ui_page)])


@pytest.fixture
def docs_gateway() -> Iterator[Any]:
    """A gateway in front of capacity and referral (and a UI when asked for)."""
    ports = {"capacity": free_port(), "referral": free_port(), "ui": free_port()}
    started = [
        _serve(_service_app("pools", "beds"), ports["capacity"]),
        _serve(_service_app("referrals", "urgency"), ports["referral"]),
        _serve(ui_app, ports["ui"]),
    ]

    def make(*, frontend: bool = False, referral_down: bool = False) -> str:
        dead = free_port()
        upstreams = {
            "capacity": Upstream("capacity", [f"http://127.0.0.1:{ports['capacity']}"]),
            "referral": Upstream(
                "referral", [f"http://127.0.0.1:{dead if referral_down else ports['referral']}"]
            ),
        }
        if frontend:
            upstreams["frontend"] = Upstream("frontend", [f"http://127.0.0.1:{ports['ui']}"])
        port = free_port()
        started.append(_serve(Gateway(upstreams), port))
        return f"http://127.0.0.1:{port}"

    try:
        yield make
    finally:
        for server, thread in started:
            server.should_exit = True
            thread.join(timeout=10)


def test_the_gateway_serves_the_services_docs_as_one(docs_gateway):
    gw = docs_gateway()
    spec = httpx.get(gw + "/openapi.json").json()
    assert {"/api/v1/pools", "/api/v1/referrals"} <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    # Both services call their model "Item", with different fields: both are kept.
    assert {"Item", "ReferralItem"} <= set(schemas)
    assert "beds" in schemas["Item"]["properties"]
    assert "urgency" in schemas["ReferralItem"]["properties"]
    ok = spec["paths"]["/api/v1/referrals"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/ReferralItem")
    docs = httpx.get(gw + "/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "swagger" in docs.text.lower()
    # No web UI here: the front page is the API's documentation.
    root = httpx.get(gw + "/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/docs"
    assert httpx.get(gw + "/entrar").status_code == 404


def test_the_front_page_is_the_frontend_when_there_is_one(docs_gateway):
    gw = docs_gateway(frontend=True)
    root = httpx.get(gw + "/")
    assert root.status_code == 200 and "Canaliza UI" in root.text
    assert "/entrar" in httpx.get(gw + "/entrar").text
    # The docs stay the gateway's, and describe the services, not the UI's pages.
    spec = httpx.get(gw + "/openapi.json").json()
    assert "/" not in spec["paths"] and "/api/v1/pools" in spec["paths"]
    assert httpx.get(gw + "/docs").status_code == 200


def test_docs_name_a_service_that_is_down(docs_gateway):
    gw = docs_gateway(referral_down=True)
    spec = httpx.get(gw + "/openapi.json").json()
    assert "/api/v1/pools" in spec["paths"] and "/api/v1/referrals" not in spec["paths"]
    assert "referral" in spec["info"]["description"]
    assert spec["x-canaliza-services"] == ["capacity"]


def test_docs_with_every_service_down_are_a_clean_503():
    dead = free_port()
    port = free_port()
    server, thread = _serve(
        Gateway({"capacity": Upstream("capacity", [f"http://127.0.0.1:{dead}"])}), port
    )
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/openapi.json")
        assert r.status_code == 503
        assert set(r.json()) == {"error", "detail"}
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# --- body size ------------------------------------------------------------------------


LIMIT = 64


def _small_gateway(port: int) -> Gateway:
    return Gateway(
        {"capacity": Upstream("capacity", [f"http://127.0.0.1:{port}"])},
        settings=Settings(max_body_bytes=LIMIT),
    )


def test_bodies_over_the_limit_are_413_and_a_body_at_it_passes():
    live, port = free_port(), free_port()
    servers = [_serve(upstream_app, live), _serve(_small_gateway(live), port)]
    url = f"http://127.0.0.1:{port}/api/v1/pools/p1/ledger"
    try:
        ok = httpx.post(url, content=b"a" * LIMIT)
        assert ok.status_code == 200, ok.text
        assert ok.json()["body"] == "a" * LIMIT
        declared = httpx.post(url, content=b"a" * (LIMIT + 1))

        def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
            for _ in range(10):
                yield b"b" * 16

        streamed = httpx.post(url, content=chunks())
        for r in (declared, streamed):
            assert r.status_code == 413, r.text
            assert set(r.json()) == {"error", "detail"}
            assert r.json()["error"] == "payload_too_large"
            assert f"{LIMIT} bytes" in r.json()["detail"]
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)


async def _drive(gateway: Gateway, headers: list[tuple[bytes, bytes]]) -> tuple[int, list[Any]]:
    """One POST straight into the ASGI app: an endless stream of 16-byte chunks."""
    reads = 0
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"c" * 16, "more_body": True}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/pools/p1/ledger",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
    }
    await gateway(scope, receive, send)
    return reads, sent


async def test_a_streamed_body_is_read_no_further_than_the_limit():
    gateway = _small_gateway(free_port())  # never reached: nothing is forwarded
    reads, sent = await _drive(gateway, [])
    assert sent[0]["status"] == 413
    assert reads == LIMIT // 16 + 1  # the chunk that crossed the limit, and no more
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert b"payload_too_large" in body


async def test_a_declared_length_over_the_limit_is_refused_unread():
    gateway = _small_gateway(free_port())
    reads, sent = await _drive(gateway, [(b"content-length", str(LIMIT + 1).encode())])
    assert sent[0]["status"] == 413
    assert reads == 0

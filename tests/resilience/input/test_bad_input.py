"""Bad input: refused early with a 4xx (or a WebSocket close with a policy code), memory
bounded by the configured limits, never by the size of what the client sends.

HTTP cases run in-process (ASGI); WebSocket frames go over a real socket to uvicorn with
the launcher's own limits (``canaliza.launcher.uvicorn_limits``), because frames are the
server's business before they are the app's. Figures go to ``var/resilience/badinput.json``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from canaliza.composition import build_app
from canaliza.launcher import uvicorn_limits
from services.settings import get_settings
from tests.conftest import running
from tests.resilience.conftest import (
    _configure_databases,
    _dispose_databases,
    password_grant_form,
    results_dir,
    write_result,
)

CHUNK = 64 * 1024


@pytest.fixture
def app(monkeypatch) -> Iterator[Any]:
    """The all-services app in demo mode (demo users, no demo roster)."""
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    _configure_databases()
    yield build_app("all")
    _dispose_databases()


def _record(kind: str, name: str, **figures: Any) -> None:
    """Merge one case's figures into ``badinput.json`` (tests may run one at a time)."""
    try:
        data = json.loads((results_dir() / "badinput.json").read_text())
    except (OSError, ValueError):
        data = {}
    parts = {k: dict(data.get(k) or {}) for k in ("http", "websocket")}
    parts[kind][name] = figures
    write_result("badinput", {**parts, "cases": sum(len(v) for v in parts.values())})


def _assert_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == code and isinstance(body["detail"], str), body
    assert "Traceback" not in resp.text


# --- HTTP ---------------------------------------------------------------------------------

NOT_A_TOKEN = {"Authorization": "Bearer not-a-token"}
JSON = {"content-type": "application/json"}


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HTTP_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    # Refused before the token is even looked at (a bad token would be 401).
    ("huge_query", {"url": "/api/v1/facilities?" + "a=b&" * 5_000}, 414, "uri_too_long"),
    (
        "huge_headers",
        {"url": "/api/v1/facilities", "headers": {f"x-h{i}": "v" * 1_000 for i in range(120)}},
        431,
        "headers_too_large",
    ),
    (
        "content_length_not_a_number",
        {"method": "POST", "url": "/api/v1/institutions", "headers": {"content-length": "x1"}},
        400,
        "bad_request",
    ),
    (
        "declared_body_too_large",
        {
            "method": "POST",
            "url": "/api/v1/institutions",
            "headers": {"content-length": str(10**12)},
        },
        413,
        "payload_too_large",
    ),
    # Parsed, and refused in the contract's shape (in Spanish), never a 500.
    (
        "deep_json_array",
        {"method": "POST", "url": "/api/v1/institutions", "content": _deep(100_000)},
        400,
        "bad_request",
    ),
    (
        "deep_json_object",
        {
            "method": "POST",
            "url": "/api/v1/availability/search",
            "content": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        },
        400,
        "bad_request",
    ),
    (
        "invalid_utf8",
        {"method": "POST", "url": "/api/v1/institutions", "content": b'{"name": "\xff\xfe"}'},
        400,
        "bad_request",
    ),
    (
        "control_character_in_json",
        {"method": "POST", "url": "/api/v1/institutions", "content": b'{"name": "a\x00b"}'},
        422,
        "validation_error",
    ),
    (
        "form_garbage_at_token_endpoint",
        {
            "method": "POST",
            "url": "/auth/token",
            "content": b"\xff\xfe=%%%&&==",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        400,
        "unsupported_grant_type",
    ),
]


async def test_bad_http_input_is_refused_in_the_contract_shape(app) -> None:
    async with running(app) as client:
        for name, request_kwargs, status, code in HTTP_CASES:
            kwargs = {"method": "GET", **request_kwargs}
            kwargs["headers"] = {**NOT_A_TOKEN, **JSON, **kwargs.get("headers", {})}
            resp = await client.request(**kwargs)
            _assert_error(resp, status, code)
            assert "There was an error" not in resp.text, name  # Spanish for the users
            _record("http", name, status=resp.status_code, error=resp.json()["error"])
        # A large but legal header (a 60 KiB detached CMS signature) is not refused as "too
        # large": the limit leaves room for what the API itself accepts.
        resp = await client.post(
            "/api/v1/agreements/x/document",
            content=b"%PDF-1.4",
            headers={**NOT_A_TOKEN, "x-cms-signature": "A" * 60_000},
        )
        assert resp.status_code != 431 and resp.status_code < 500, resp.text


async def _stream(total: int, consumed: list[int]) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        consumed[0] += CHUNK
        sent += CHUNK
        yield os.urandom(CHUNK)  # a new object each time: the server cannot share one block


async def test_a_huge_streamed_body_is_cut_at_the_limit_with_bounded_memory(app) -> None:
    """A 32 MiB body without Content-Length: the app stops reading at the limit, and the
    memory it allocates is bounded by the limit, not by the body."""
    limit = get_settings().max_body_bytes
    body_size = 32 * limit
    async with running(app) as client:
        # Warm up (first-request imports and caches are not the body's cost).
        await client.post("/api/v1/institutions", json={}, headers=NOT_A_TOKEN)
        consumed = [0]
        tracemalloc.start()
        try:
            resp = await client.post(
                "/api/v1/institutions",
                content=_stream(body_size, consumed),
                headers={**NOT_A_TOKEN, **JSON},
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    _assert_error(resp, 413, "payload_too_large")
    assert consumed[0] <= limit + 2 * CHUNK, consumed[0]
    assert peak < 4 * limit, f"peak {peak} bytes for a limit of {limit}"
    _record(
        "http",
        "streamed_body_32x_limit",
        status=413,
        body_bytes=body_size,
        bytes_read=consumed[0],
        peak_python_bytes=peak,
        limit_bytes=limit,
    )


async def test_a_body_at_the_limit_costs_memory_proportional_to_the_limit(app) -> None:
    """The largest accepted body (deeply nested JSON just under the limit) is parsed and
    refused without a 500, within a bounded multiple of the limit."""
    limit = get_settings().max_body_bytes
    body = b'{"people": [' + b"{}," * ((limit - 64) // 3) + b"{}]}"
    assert len(body) <= limit
    async with running(app) as client:
        tracemalloc.start()
        try:
            resp = await client.post(
                "/api/v1/availability/search", content=body, headers={**NOT_A_TOKEN, **JSON}
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert 400 <= resp.status_code < 500, resp.text
    assert peak < 64 * limit, f"peak {peak} bytes for a body of {len(body)}"
    _record(
        "http",
        "body_at_limit",
        status=resp.status_code,
        body_bytes=len(body),
        peak_python_bytes=peak,
    )


# --- WebSocket, over a real socket ----------------------------------------------------------


class Server:
    """uvicorn with the launcher's limits, in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            **uvicorn_limits(get_settings()),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(400):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("uvicorn did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def _handshake(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /api/v1/capacity/live HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _frame(
    opcode: int,
    payload: bytes,
    *,
    rsv: int = 0,
    masked: bool = True,
    declared: int | None = None,
) -> bytes:
    length = len(payload) if declared is None else declared
    head = bytes([0x80 | (rsv << 4) | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _close_code(sock: socket.socket) -> tuple[int | None, list[dict[str, Any]]]:
    """Read server frames until its close frame; (close code, JSON messages seen)."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            b0, b1 = _recv_exact(sock, 2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack("!H", _recv_exact(sock, 2))[0]
            elif length == 127:
                length = struct.unpack("!Q", _recv_exact(sock, 8))[0]
            payload = _recv_exact(sock, length)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                return (struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None), seen
            if opcode == 0x1:
                seen.append(json.loads(payload))
    except (ConnectionError, TimeoutError, OSError):
        return None, seen
    finally:
        sock.close()


WS_CASES = [
    # (name, frame, expected close code, what the app says first — None: the protocol layer)
    ("reserved_bits_set", lambda: _frame(0x1, b'{"type":"ping"}', rsv=0b100), 1002, None),
    ("unmasked_client_frame", lambda: _frame(0x1, b'{"type":"ping"}', masked=False), 1002, None),
    ("unknown_opcode", lambda: _frame(0x3, b"??"), 1002, None),
    ("invalid_utf8_text", lambda: _frame(0x1, b'{"type":"\xff"}'), 1007, None),
    ("not_json", lambda: _frame(0x1, b"{nope"), 1003, "invalid_json"),
    ("binary_frame", lambda: _frame(0x2, b"\x00\x01"), 1003, "unsupported_frame"),
    ("json_not_an_object", lambda: _frame(0x1, b"[1,2]"), 1003, "invalid_message"),
    # Only the header is sent: the server must refuse on the announced size alone.
    ("announced_64MiB_message", lambda: _frame(0x1, b"", declared=64 << 20), 1009, None),
]


def test_malformed_websocket_frames_are_closed_with_a_policy_code(app) -> None:
    with Server(app) as server:
        for name, make_frame, code, error in WS_CASES:
            sock = _handshake(server.port)
            sock.sendall(make_frame())
            got, seen = _close_code(sock)
            assert got == code, (name, got, seen)
            if error is not None:
                assert seen and seen[-1]["error"] == error and seen[-1]["detail"], (name, seen)
            _record("websocket", name, close_code=got)
        _still_serves(server)


def test_an_oversized_websocket_message_is_refused_with_bounded_memory(app) -> None:
    """A 4 MiB message (64× the limit): closed 1009, and the server allocates a bounded
    multiple of the limit, not the message."""
    limit = get_settings().max_ws_message_bytes
    with Server(app) as server:
        frame = _frame(0x1, b'{"type":"ping","pad":"' + b"x" * (4 << 20) + b'"}')
        sock = _handshake(server.port)
        tracemalloc.start()
        try:
            with_error = False
            try:
                sock.sendall(frame)
            except OSError:  # the server closed while we were still sending: fine
                with_error = True
            got, _ = _close_code(sock)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert got == 1009 or (got is None and with_error), got
        assert peak < 16 * limit + (1 << 20), f"peak {peak} for a limit of {limit}"
        _record(
            "websocket",
            "message_64x_limit",
            close_code=got,
            message_bytes=len(frame),
            peak_python_bytes=peak,
            limit_bytes=limit,
        )
        _still_serves(server)


def _still_serves(server: Server) -> None:
    """After all that, a well-behaved client authenticates, subscribes, gets a snapshot."""
    token = httpx.post(
        f"http://127.0.0.1:{server.port}/auth/token", data=password_grant_form("fiscal")
    ).json()["access_token"]

    async def client() -> dict[str, Any]:
        from websockets.asyncio.client import connect

        async with connect(f"ws://127.0.0.1:{server.port}/api/v1/capacity/live") as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            await ws.send(json.dumps({"type": "subscribe", "filters": {}}))
            for _ in range(5):
                message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if message["type"] == "snapshot":
                    return message
        raise AssertionError("no snapshot")

    assert "pools" in asyncio.run(client())

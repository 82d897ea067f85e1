"""Review of 2026-12 (issue 20), item 9 (Low): one regression test per finding.

See ``docs/security/threat-model.md`` ("Review of 2026-12 — input bounds, oracles,
lockout, logs, origin") for the attack, the fix and which test covers it.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from canaliza.demo import CASA_MERCEDES, FGR
from tests.resilience.attacks.test_asvs import plain_app  # noqa: F401 (fixture)
from tests.resilience.attacks.test_leaks import Session, _lifecycle
from tests.resilience.conftest import DEMO_USERNAMES, password_grant_form

HUGE = "99999999999999999999"


def _session(client: TestClient, *roles: str) -> Session:
    s = Session(client)
    for role in roles or DEMO_USERNAMES:
        resp = client.post("/auth/token", data=password_grant_form(role))
        assert resp.status_code == 200, resp.text
        s.tokens[role] = resp.json()["access_token"]
    return s


def _pool_id(s: Session, role: str = "coordinadora") -> str:
    facilities = s.call(role, "GET", "/api/v1/facilities").json()["items"]
    ours = [f for f in facilities if f["operator_institution_id"] == CASA_MERCEDES.id]
    return str(s.call(role, "GET", f"/api/v1/facilities/{ours[0]['id']}/pools").json()[0]["id"])


# --- 1. an offset beyond a 64-bit integer is a 422, never a 500 --------------------------


def test_offsets_out_of_range_are_refused(demo_app) -> None:
    """Checked before any query: the same 422 on SQLite and PostgreSQL (which 500ed on an
    integer it cannot bind)."""
    with TestClient(demo_app) as client:
        s = _session(client, "coordinadora", "admin")
        pool = _pool_id(s)
        for offset in (HUGE, "9223372036854775808", "10000001", "-1"):
            for role, path in (
                ("coordinadora", f"/api/v1/pools/{pool}/ledger"),
                ("admin", "/api/v1/audit/events"),
                ("admin", "/api/v1/facilities"),
            ):
                resp = s.call(role, "GET", path, params={"offset": offset})
                assert resp.status_code == 422, (path, offset, resp.text)
                assert resp.json()["error"] == "validation_error"
        # The largest offset accepted still answers (an empty page).
        resp = s.call("admin", "GET", "/api/v1/audit/events", params={"offset": 10_000_000})
        assert resp.status_code == 200 and resp.json()["items"] == []


# --- 2. a malformed redirect_uri is a 400 page, never a 500 nor a redirect ---------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1\\@evil/callback",
        "http://127.0.0.1\\@evil.example/callback",
        "http://[127.0.0.1/callback",
        "http://127.0.0.1:99999/callback",
        "http://127.0.0.1:x/callback",
        "http://evil.example/callback",
        "http://127.0.0.1@evil.example/callback",
    ],
)
def test_a_malformed_redirect_uri_is_an_error_page(plain_app, redirect_uri) -> None:
    params = {
        "response_type": "code",
        "client_id": "canaliza-cli",
        "redirect_uri": redirect_uri,
        "state": "xyz",
        "scope": "openid",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    with TestClient(plain_app, follow_redirects=False) as client:
        page = client.get("/auth/authorize", params=params)
        assert page.status_code == 400, page.text
        assert "evil" not in page.headers.get("location", "")
        form = {**params, "username": "fiscal", "password": "canaliza-demo", "csrf_token": "c"}
        client.cookies.set("canaliza_csrf", "c")
        sent = client.post("/auth/authorize", data=form)
        assert sent.status_code in (400, 403), sent.text
        assert "evil" not in sent.headers.get("location", "")


# --- 5. a token in a URL never reaches the server's log ---------------------------------


async def test_the_server_log_drops_query_strings(caplog) -> None:
    """A real uvicorn server (access log on, info level) logs a WebSocket and an HTTP
    request made with ``?token=…``: neither line carries the query string."""
    import asyncio
    import threading

    import httpx
    import uvicorn
    import websockets
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket

    from services.observability import configure_logging
    from tests.live.conftest import free_port

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hola")
        await websocket.close()

    async def page(_: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[WebSocketRoute("/live", echo), Route("/page", page)])
    configure_logging("test")
    caplog.set_level(logging.INFO)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="info", access_log=True, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            await asyncio.sleep(0.02)
        secret = "eyJhbGciOiJFUzI1NiJ9.secreto-en-la-url"
        async with websockets.connect(f"ws://127.0.0.1:{port}/live?token={secret}") as ws:
            assert await ws.recv() == "hola"
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"http://127.0.0.1:{port}/page?access_token={secret}")
            assert resp.status_code == 200
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")]
    assert any("WebSocket /live" in line for line in lines), lines
    assert any("/page" in line for line in lines), lines
    assert not [line for line in lines if secret in line or "token=" in line], lines


# --- 9. /live's Origin check does not believe X-Forwarded-Host ---------------------------


def _live_close_code(app: Any, headers: dict[str, str]) -> int:
    from starlette.websockets import WebSocketDisconnect

    with TestClient(app, base_url="http://testserver") as client:
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/live", headers=headers) as ws,
        ):
            ws.receive_text()
    return closed.value.code


FORGED = {
    "origin": "https://evil.example",
    "x-forwarded-host": "evil.example",
    "x-forwarded-proto": "https",
}


def test_live_refuses_a_forged_forwarded_host(plain_app, monkeypatch) -> None:
    # 4403: the Origin is refused (before, the forged header made it "same origin" and the
    # socket went on to the session check, 4401).
    assert _live_close_code(plain_app, FORGED) == 4403
    assert _live_close_code(plain_app, {"origin": "http://testserver"}) == 4401
    # Behind a proxy that overwrites the header, a setting says to believe it.
    from canaliza.composition import build_app
    from services.settings import get_settings

    monkeypatch.setenv("CANALIZA_TRUST_FORWARDED_HOST", "1")
    get_settings.cache_clear()
    assert _live_close_code(build_app("all"), FORGED) == 4401

"""A revoked token closes the live feeds it opened (issue 20, item 8).

The live capacity WebSocket authenticates once (first message) and used to keep serving
a token the auth service had revoked until the token expired (up to 15 minutes). Now the
app's deny-list tells the hub of each revocation as it records it, and every connection
authenticated with that token (``jti``) or refresh-token family (``sid``) closes at once
with 4401 «token revocado»; the others stay open. On a real server (uvicorn), in the
one-process shape (auth and capacity on one in-process bus), and across two instances on
NATS.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from auth import main as auth_main
from auth.database import db as auth_db
from capacity import main as capacity_main
from capacity.database import db as capacity_db
from capacity.live import LiveOptions
from services.app import create_app
from services.bus import InProcessBus
from services.bus_nats import NatsBus
from services.events import Event
from services.settings import get_settings
from tests.auth.conftest import password_form
from tests.live.conftest import ServerThread, delete_stream, free_port, pool_row

# Generous: the close is expected within the bus latency; this only bounds a broken run.
PATIENCE = 60


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), PATIENCE))
        if msg["type"] != "ping":
            return msg


async def _open(url: str, token: str) -> ClientConnection:
    ws = await connect(url)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert (await _recv(ws))["type"] == "ready"
    await ws.send(json.dumps({"type": "subscribe", "filters": {}}))
    assert (await _recv(ws))["type"] == "snapshot"
    return ws


async def _closed_by_server(ws: ClientConnection) -> list[dict[str, Any]]:
    """Everything the server sent until it closed the socket (waits for the close)."""
    got: list[dict[str, Any]] = []

    async def read() -> None:
        with pytest.raises(ConnectionClosed):
            while True:
                got.append(json.loads(await ws.recv()))

    await asyncio.wait_for(read(), PATIENCE)
    return got


async def _still_open(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping"}))
    assert (await _recv(ws))["type"] == "pong"


def _revoked_close(ws: ClientConnection, got: list[dict[str, Any]]) -> None:
    assert ws.close_code == 4401 and ws.close_reason == "token revocado"
    assert [m["error"] for m in got if m["type"] == "error"] == ["token_revoked"]
    assert "revocado" in next(m["detail"] for m in got if m["type"] == "error")


@pytest.fixture
def one_process(tmp_path, monkeypatch):
    """Auth and capacity in one app on one in-process bus (the one-process shape)."""
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    auth_db.configure(f"sqlite:///{tmp_path}/auth.db")
    capacity_db.configure(f"sqlite:///{tmp_path}/capacity.db")
    app = create_app([auth_main.service(), capacity_main.service()], bus=InProcessBus())
    yield app
    auth_db.dispose()
    capacity_db.dispose()


async def test_revoking_an_access_token_closes_its_live_socket_only(one_process):
    async with (
        ServerThread(one_process) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=PATIENCE) as http,
    ):
        revoked = (await http.post("/auth/token", data=password_form("fiscal"))).json()
        kept = (await http.post("/auth/token", data=password_form("fiscal"))).json()
        doomed = await _open(server.ws_url, revoked["access_token"])
        other = await _open(server.ws_url, kept["access_token"])
        r = await http.post(
            "/auth/revoke",
            data={"token": revoked["access_token"], "client_id": "canaliza-cli"},
        )
        assert r.status_code == 200
        got = await _closed_by_server(doomed)
        _revoked_close(doomed, got)
        # the token was far from expiring: it is the revocation that closed the socket
        assert (
            _claims(revoked["access_token"])["exp"] - _claims(revoked["access_token"])["iat"] >= 300
        )
        await _still_open(other)  # another token of the same person keeps its feed
        # and the revoked token cannot open a new one
        again = await connect(server.ws_url)
        await again.send(json.dumps({"type": "auth", "token": revoked["access_token"]}))
        got = await _closed_by_server(again)
        assert again.close_code == 4401 and got[0]["error"] == "token_revoked"
        await other.close()


async def test_a_revoked_refresh_family_closes_every_socket_of_the_family(one_process):
    async with (
        ServerThread(one_process) as server,
        httpx.AsyncClient(base_url=server.http_url, timeout=PATIENCE) as http,
    ):
        form = {"grant_type": "refresh_token", "client_id": "canaliza-cli"}
        first = (await http.post("/auth/token", data=password_form("coordinadora"))).json()
        r = await http.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        second = r.json()
        stranger = (await http.post("/auth/token", data=password_form("coordinadora"))).json()
        assert _claims(second["access_token"])["sid"] == _claims(first["access_token"])["sid"]
        family = [await _open(server.ws_url, t["access_token"]) for t in (first, second)]
        outsider = await _open(server.ws_url, stranger["access_token"])
        # the rotated refresh token shows up again: the whole family is revoked
        r = await http.post("/auth/token", data={**form, "refresh_token": first["refresh_token"]})
        assert r.status_code == 400
        for ws in family:
            _revoked_close(ws, await _closed_by_server(ws))
        await _still_open(outsider)
        await outsider.close()


@pytest.mark.nats
async def test_a_revocation_on_one_instance_closes_a_socket_on_another(
    make_feed, make_token, nats_url, nats_names
):
    stream, prefix = nats_names
    options = LiveOptions(heartbeat_seconds=30)

    def bus() -> NatsBus:
        return NatsBus(url=nats_url, stream=stream, subject_prefix=prefix, idle_heartbeat=0.5)

    revoked, kept = make_token("prosecutor"), make_token("prosecutor")
    try:
        async with (
            make_feed(options=options, pools=[pool_row("p1")], bus=bus()) as one,
            make_feed(options=options, pools=[pool_row("p1")], bus=bus()) as two,
        ):
            doomed = await _open(two.server.ws_url, revoked)
            other = await _open(two.server.ws_url, kept)
            claims = _claims(revoked)
            # what the auth service publishes, reaching instance 2 through the broker
            await one.publish(
                Event(
                    type="auth.token.revoked",
                    aggregate_type="access_token",
                    aggregate_id=claims["jti"],
                    payload={"token_type": "access_token", "exp": claims["exp"]},
                )
            )
            _revoked_close(doomed, await _closed_by_server(doomed))
            await _still_open(other)
            await other.close()
    finally:
        await delete_stream(nats_url, stream)


async def test_the_web_ui_proxy_passes_the_revocation_close_to_the_browser(monkeypatch):
    """The browser's ``/live`` (frontend proxy) closes with capacity's 4401 «token revocado»."""
    from canaliza.composition import available_packages, build_app, load_spec
    from capacity.live import HUB_KEY
    from tests.frontend.conftest import sign_in

    port = free_port()
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    monkeypatch.setenv("CANALIZA_PUBLIC_URL", f"http://127.0.0.1:{port}")
    get_settings.cache_clear()
    specs = [load_spec(name) for name in available_packages()]
    for spec in specs:
        if spec.database is not None:
            spec.database.configure()
    app = build_app("all")
    runtime = app.state.runtime
    server = ServerThread(app)
    server.port = server.server.config.port = port  # the public URL the sign-in returns to
    try:
        async with (
            server,
            httpx.AsyncClient(base_url=server.http_url, timeout=PATIENCE) as browser,
        ):
            await sign_in(browser, "fiscal")
            cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
            url = server.http_url.replace("http", "ws") + "/live"
            ws = await connect(
                url, additional_headers={"Origin": server.http_url, "Cookie": cookie}
            )
            assert (await _recv(ws))["type"] == "ready"
            [upstream] = list(runtime.state[HUB_KEY].connections)  # the proxy's own socket
            claims = upstream.principal.claims
            loop = upstream.reader.get_loop()  # the server's event loop, where its bus runs
            revocation = Event(
                type="auth.token.revoked",
                aggregate_type="access_token",
                aggregate_id=claims["jti"],
                payload={"token_type": "access_token", "exp": claims["exp"]},
            )
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(runtime.bus.publish(revocation), loop)
            )
            _revoked_close(ws, await _closed_by_server(ws))
    finally:
        for spec in specs:
            if spec.database is not None:
                spec.database.dispose()

"""The web UI's live proxy (``/live``) on a real server: what the feed gives each browser.

In the main job the proxy relays each browser to capacity's feed in process (its messages
handed to the browser's socket as they are); in the topology it opens a WebSocket to
capacity running apart. Either way a browser gets exactly what the feed gives its user
for its filters: every change it is entitled to, in order, and nothing else. The session
cookie is read only for a page of this site (Origin); the token never leaves the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

import frontend.live as proxy
from capacity.live import (
    HUB_KEY,
    OPTIONS_KEY,
    LiveOptions,
    live_router,
    set_snapshot_provider,
    start_live,
    stop_live,
)
from frontend.dependencies import SESSION_COOKIE
from services.app import ServiceSpec, create_app
from services.bus import InProcessBus
from services.events import Event
from services.settings import get_settings
from tests.live.conftest import ServerThread, pool_event, pool_row, until_closed
from tests.live.test_live_referrals import FGR, NGO, OTHER, referral_event

FAST = LiveOptions(heartbeat_seconds=30, auth_timeout_seconds=2)

# Four filter classes, some with several browsers: what each should be shown.
FILTERS: dict[str, dict[str, Any]] = {
    "cdmx": {"state": "09"},
    "jalisco": {"state": "14"},
    "girl15": {"profile": {"sex": "F", "age": 15}},
    "women09": {"facility_id": "fac-women09"},
}
BROWSERS = ["cdmx", "cdmx", "cdmx", "jalisco", "jalisco", "girl15", "girl15", "women09"]


def _pools() -> list[dict[str, Any]]:
    return [
        pool_row("girls09", state="09", sexes=["F"], min_age=12, max_age=17),
        pool_row("women09", state="09", sexes=["F"], min_age=18, max_age=99),
        pool_row("men14", state="14", sexes=["M"], min_age=18, max_age=99),
    ]


@dataclass
class FakeSession:
    """What ``/live`` reads of a browser session: signed in, and its user's token."""

    token: str
    signed_in: bool = True

    def tokens(self) -> dict[str, Any]:
        return {"expires_at": 4_000_000_000}


class TokenPage:
    """The page's token handling: the session user's access token, refreshed server-side."""

    def __init__(self, *, browser: FakeSession, **_: Any) -> None:
        self.browser = browser

    async def access_token(self) -> str:
        return self.browser.token


class Sessions:
    """Cookie value → session, installed as the proxy's session loader (and its reads)."""

    def __init__(self) -> None:
        self.by_cookie: dict[str, FakeSession] = {}
        self.reads: list[str | None] = []

    def add(self, cookie: str, token: str) -> str:
        self.by_cookie[cookie] = FakeSession(token)
        return cookie

    def load(self, raw: str | None) -> FakeSession | None:
        self.reads.append(raw)
        return self.by_cookie.get(raw or "")


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> Sessions:
    known = Sessions()
    monkeypatch.setattr(proxy, "_load", known.load)
    monkeypatch.setattr(proxy, "Page", TokenPage)
    return known


class Site:
    """The web UI's server and, when capacity runs in it, its live hub."""

    def __init__(
        self, server: ServerThread, app: Any, capacity: Any, capacity_server: ServerThread
    ) -> None:
        self.server, self.app, self.capacity = server, app, capacity
        self.origin = f"http://127.0.0.1:{server.port}"
        self.url = f"ws://127.0.0.1:{server.port}/live"
        self.feed_url = capacity_server.ws_url  # capacity's own feed, without the proxy

    async def publish(self, event: Event) -> None:
        runtime = self.capacity.state.runtime
        loop: asyncio.AbstractEventLoop = runtime.state["loop"]
        await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(runtime.bus.publish(event), loop)
        )

    def hub(self) -> Any:
        return self.capacity.state.runtime.state[HUB_KEY]

    async def browser(
        self, cookie: str | None, origin: str | None = "", **kw: Any
    ) -> ClientConnection:
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"} if cookie else {}
        return await connect(
            self.url,
            origin=self.origin if origin == "" else origin,  # type: ignore[arg-type]
            additional_headers=headers,
            **kw,
        )


def _capacity_spec() -> ServiceSpec:
    return ServiceSpec(
        name="capacity",
        public_routers=[live_router],
        on_startup=[start_live],
        on_shutdown=[stop_live],
    )


async def _remember_loop(runtime: Any) -> None:
    runtime.state["loop"] = asyncio.get_running_loop()


@pytest.fixture
def make_site(
    test_verifier: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., contextlib.AbstractAsyncContextManager[Site]]:
    """``async with make_site(distributed=False)``: the web UI with capacity in process
    (the main job), or the web UI apart, relaying to capacity's own server (the topology)."""

    @contextlib.asynccontextmanager
    async def _site(*, distributed: bool = False) -> AsyncIterator[Site]:
        rows = {p["pool_id"]: p for p in _pools()}
        set_snapshot_provider(lambda filters: [dict(r) for r in rows.values()])
        frontend_spec = ServiceSpec(name="frontend", public_routers=[proxy.router])
        try:
            if not distributed:
                app = create_app(
                    [_capacity_spec(), frontend_spec],
                    bus=InProcessBus(),
                    extra_startup=[_remember_loop],
                )
                app.state.runtime.state[OPTIONS_KEY] = FAST
                async with ServerThread(app) as server:
                    yield Site(server, app, app, server)
                return
            capacity = create_app(
                [_capacity_spec()], bus=InProcessBus(), extra_startup=[_remember_loop]
            )
            capacity.state.runtime.state[OPTIONS_KEY] = FAST
            async with ServerThread(capacity) as capacity_server:
                monkeypatch.setenv("CANALIZA_CAPACITY_URL", capacity_server.http_url)
                get_settings.cache_clear()
                web = create_app([frontend_spec], bus=InProcessBus())
                assert web.state.runtime.transport_for("capacity")[1] is None  # over the network
                async with ServerThread(web) as server:
                    yield Site(server, web, capacity, capacity_server)
        finally:
            set_snapshot_provider(None)

    return _site


async def _recv(ws: ClientConnection) -> dict[str, Any]:
    """The next message other than a heartbeat."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] != "ping":
            return message


async def _subscribe(
    site: Site, cookie: str, filters: dict[str, Any]
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await site.browser(cookie)
    assert (await _recv(ws))["type"] == "ready"
    await ws.send(json.dumps({"type": "subscribe", "filters": filters}))
    return ws, await _recv(ws)


async def _all_until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Everything the browser was sent before the answer to a ping sent now: what it got,
    and that nothing else was on its way."""
    await ws.send(json.dumps({"type": "ping"}))
    seen = []
    while (message := await _recv(ws))["type"] != "pong":
        seen.append(message)
    return seen


async def _refused(site: Site, cookie: str | None, origin: str | None = "") -> int | None:
    """The HTTP status the handshake was refused with (None: it was accepted)."""
    try:
        ws = await site.browser(cookie, origin=origin)
    except InvalidStatus as refused:
        return refused.response.status_code
    await ws.close()
    return None


def _brief(message: dict[str, Any]) -> tuple[Any, ...]:
    kind = message["type"]
    if kind == "facility":
        return (kind, message["facility_id"], message["status"])
    return (kind, message.get("pool_id"), message.get("version"))


# What each filter is entitled to, given the changes ``_changes`` makes.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "cdmx": [
        ("pool", "women09", 2),
        ("pool", "girls09", 2),
        ("pool_removed", "girls09", 3),  # moved to Jalisco: out of this view
        ("facility", "fac-women09", "suspended"),
    ],
    "jalisco": [("pool", "men14", 2), ("pool", "girls09", 3)],
    "girl15": [("pool", "girls09", 2), ("pool", "girls09", 3)],
    "women09": [("pool", "women09", 2), ("facility", "fac-women09", "suspended")],
}
SNAPSHOTS = {
    "cdmx": ["girls09", "women09"],
    "jalisco": ["men14"],
    "girl15": ["girls09"],
    "women09": ["women09"],
}


async def _changes(site: Site) -> None:
    pools = {p["pool_id"]: p for p in _pools()}
    await site.publish(pool_event({**pools["women09"], "version": 2, "occupied": 3}))
    await site.publish(pool_event({**pools["men14"], "version": 2, "occupied": 5}))
    await site.publish(pool_event({**pools["girls09"], "version": 2, "occupied": 1}))
    await site.publish(pool_event({**pools["girls09"], "version": 2, "occupied": 1}))  # again
    await site.publish(pool_event({**pools["girls09"], "version": 3, "state": "14"}))
    await site.publish(
        Event(
            type="capacity.facility.status_changed",
            aggregate_type="facility",
            aggregate_id="fac-women09",
            aggregate_version=4,
            payload={"facility_id": "fac-women09", "status": "suspended"},
        )
    )


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "topology"])
async def test_every_browser_gets_what_its_filter_entitles_it_to_and_nothing_else(
    make_site, make_token, sessions, distributed
):
    async with make_site(distributed=distributed) as site:
        browsers = []
        for i, name in enumerate(BROWSERS):
            cookie = sessions.add(f"c{i}", make_token("prosecutor", institution_id=FGR))
            ws, snapshot = await _subscribe(site, cookie, FILTERS[name])
            assert snapshot["type"] == "snapshot"
            assert sorted(p["pool_id"] for p in snapshot["pools"]) == SNAPSHOTS[name]
            browsers.append((name, ws))
        # One client of each filter straight on capacity's feed, to compare the proxy with.
        direct = {}
        for name, filters in FILTERS.items():
            ws = await connect(site.feed_url)
            await ws.send(json.dumps({"type": "auth", "token": make_token("prosecutor")}))
            assert (await _recv(ws))["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe", "filters": filters}))
            assert (await _recv(ws))["type"] == "snapshot"
            direct[name] = ws
        if not distributed:
            hub = site.hub()
            assert len(hub.connections) == len(BROWSERS) + len(FILTERS)
            assert len(hub.classes) == len(FILTERS)  # proxied browsers share the classes
        await _changes(site)
        feed = {name: await _all_until_pong(ws) for name, ws in direct.items()}
        for name, ws in browsers:
            got = await _all_until_pong(ws)
            assert [_brief(m) for m in got] == EXPECTED[name], name
            assert got == feed[name], name  # the feed's messages, as they are
            await ws.close()
        for ws in direct.values():
            await ws.close()


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "topology"])
async def test_referral_notices_reach_only_the_institutions_concerned_through_the_proxy(
    make_site, make_token, sessions, distributed
):
    async with make_site(distributed=distributed) as site:
        opened = {}
        for institution in (FGR, NGO, OTHER):
            cookie = sessions.add(institution, make_token("prosecutor", institution_id=institution))
            ws, snapshot = await _subscribe(site, cookie, {"referrals": True})
            assert snapshot["pools"] == []
            opened[institution] = ws
        await site.publish(referral_event("send", "sent"))
        sender = await _all_until_pong(opened[FGR])
        receiver = await _all_until_pong(opened[NGO])
        assert [(m["type"], m["event"], m["side"]) for m in sender] == [
            ("referral", "send", "sender")
        ]
        assert [(m["type"], m["event"], m["side"]) for m in receiver] == [
            ("referral", "send", "receiver")
        ]
        assert receiver[0]["people"] == 1 and "nationality" not in json.dumps(receiver)
        assert await _all_until_pong(opened[OTHER]) == []
        for ws in opened.values():
            await ws.close()


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "topology"])
async def test_a_foreign_or_missing_origin_is_refused_before_the_session_is_read(
    make_site, make_token, sessions, distributed
):
    async with make_site(distributed=distributed) as site:
        cookie = sessions.add("signed-in", make_token("prosecutor", institution_id=FGR))
        # Refused before the WebSocket is accepted: a real server answers the handshake 403.
        for origin in ("https://evil.example", f"{site.origin}.evil.example", None):
            assert await _refused(site, cookie, origin) == 403
        assert sessions.reads == []  # the cookie was never even looked up
        if not distributed:
            assert not site.hub().connections  # and capacity was never asked
        # No session, or one that is not signed in: refused too, and capacity never asked.
        assert await _refused(site, None) == 403
        assert await _refused(site, "unknown") == 403
        assert sessions.reads == [None, "unknown"]
        if not distributed:
            assert not site.hub().connections
        # The same page with its session is served.
        ws, snapshot = await _subscribe(site, cookie, {"state": "14"})
        assert [p["pool_id"] for p in snapshot["pools"]] == ["men14"]
        await ws.close()


@pytest.mark.parametrize("distributed", [False, True], ids=["in-process", "topology"])
async def test_the_browser_never_speaks_for_the_token_and_capacity_closes_reach_it(
    make_site, make_token, sessions, distributed
):
    async with make_site(distributed=distributed) as site:
        mine = make_token("prosecutor", institution_id=FGR, sub="fiscal-1")
        other = make_token("prosecutor", institution_id=NGO, sub="someone-else")
        cookie = sessions.add("fiscal", mine)
        ws = await site.browser(cookie)
        assert (await _recv(ws))["sub"] == "fiscal-1"
        # A token sent by the browser is dropped: capacity would close a different subject.
        await ws.send(json.dumps({"type": "auth", "token": other}))
        await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "09"}}))
        snapshot = await _recv(ws)
        assert snapshot["type"] == "snapshot"
        assert await _all_until_pong(ws) == []
        if not distributed:
            (conn,) = site.hub().connections
            assert conn.principal.sub == "fiscal-1"
        await ws.close()
        # Capacity's refusal reaches the browser with its own close code (an observer: 4403).
        observer = sessions.add("observer", make_token("observer", institution_id=FGR))
        code, seen = await until_closed(await site.browser(observer))
        assert code == 4403
        assert [m["error"] for m in seen] == ["forbidden_role"]


async def test_in_process_the_feed_s_messages_reach_the_browser_as_they_are():
    """The in-process upstream hands each text message to the browser's send unchanged and
    keeps the accept and the close for the proxy."""
    forwarded: list[MutableMapping[str, Any]] = []

    async def browser_send(message: MutableMapping[str, Any]) -> None:
        forwarded.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        assert json.loads((await receive())["text"]) == {"type": "subscribe"}
        await send({"type": "websocket.send", "text": '{"type":"pool","pool_id":"p"}'})
        await send({"type": "websocket.send", "bytes": b"binary"})  # never relayed
        await send({"type": "websocket.close", "code": 4000, "reason": "reconnect"})

    upstream = proxy.InProcessUpstream(app, proxy.UPSTREAM_PATH, forward=browser_send)
    await upstream.open()
    await upstream.send(json.dumps({"type": "subscribe"}))
    assert await upstream.recv() is None
    assert forwarded == [{"type": "websocket.send", "text": '{"type":"pool","pool_id":"p"}'}]
    assert (upstream.close_code, upstream.close_reason) == (4000, "reconnect")
    assert proxy._close_of(upstream) == {"code": 4000, "reason": "reconnect"}
    await upstream.close()

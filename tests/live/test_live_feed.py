"""The live capacity WebSocket on a real uvicorn server, fed by the in-process bus."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from capacity.live import LiveOptions, compile_filters
from services.bus import InProcessBus
from services.events import Event
from tests.live.conftest import pool_event, pool_row, until_closed

FAST = LiveOptions(heartbeat_seconds=30, auth_timeout_seconds=0.5)


def _pools() -> list[dict[str, Any]]:
    return [
        # A girls' refuge in Mexico City.
        pool_row("girls09", state="09", sexes=["F"], min_age=12, max_age=17),
        # A women's refuge in Mexico City that takes their children up to 12.
        pool_row(
            "women09",
            state="09",
            sexes=["F"],
            min_age=18,
            max_age=99,
            accepts_children=True,
            max_child_age=12,
            max_children=3,
        ),
        # A men's shelter in Jalisco (14), witnesses welcome.
        pool_row("men14", state="14", sexes=["M"], min_age=18, max_age=99, accepts_witnesses=True),
    ]


async def _recv(ws: ClientConnection, wait: float = 10) -> dict[str, Any]:
    """The next message other than a heartbeat."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), wait))
        if msg["type"] != "ping":
            return msg


async def _until(predicate: Any) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def _open(feed: Any, token: str, **kw: Any) -> ClientConnection:
    ws = await connect(feed.server.ws_url, **kw)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert (await _recv(ws))["type"] == "ready"
    return ws


async def _subscribe(
    feed: Any, token: str, filters: dict[str, Any] | None = None, **kw: Any
) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await _open(feed, token)
    await ws.send(json.dumps({"type": "subscribe", "filters": filters or {}, **kw}))
    return ws, await _recv(ws)


def test_eligibility_profiles_select_the_pools_that_could_take_the_person():
    girls, women, men = _pools()
    girl15 = compile_filters({"profile": {"sex": "F", "age": 15, "role": "victim"}})
    assert [girl15(p) for p in (girls, women, men)] == [True, False, False]
    boy4 = compile_filters({"profile": {"sex": "M", "age": 4, "role": "accompanying_child"}})
    assert [boy4(p) for p in (girls, women, men)] == [False, True, False]
    boy13 = compile_filters({"profile": {"sex": "M", "age": 13, "role": "accompanying_child"}})
    assert not boy13(women)
    witness = compile_filters({"profile": {"sex": "M", "age": 30, "role": "witness"}})
    assert [witness(p) for p in (girls, women, men)] == [False, False, True]
    unknown_age = compile_filters({"profile": {"sex": "F", "age": None}})
    assert [unknown_age(p) for p in (girls, women, men)] == [True, True, False]
    assert not compile_filters({})({**girls, "facility_status": "suspended"})
    both = compile_filters({"state": "09", "facility_id": "fac-women09"})
    assert [both(p) for p in (girls, women, men)] == [False, True, False]
    bad: Any
    for bad in (
        {"state": "9"},
        {"state": "33"},
        {"colour": "x"},
        {"profile": {"sex": "Z"}},
        {"profile": {"age": -1}},
        {"profile": {"age": True}},
        {"profile": {"role": "boss"}},
        {"profile": {"name": "x"}},
        [],
    ):
        with pytest.raises(ValueError):
            compile_filters(bad)


async def test_auth_comes_first_and_bad_tokens_are_closed_with_4401(make_feed, make_token):
    async with make_feed(options=FAST, pools=_pools()) as feed:
        url = feed.server.ws_url
        # Subscribing before authenticating.
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "subscribe", "filters": {}}))
            code, seen = await until_closed(ws)
            assert code == 4401 and seen[-1]["error"] == "auth_required"
        # Forged, expired, or missing tokens.
        for token in ("abc", make_token("prosecutor", ttl=-120), "", None):
            async with connect(url) as ws:
                await ws.send(json.dumps({"type": "auth", "token": token}))
                code, seen = await until_closed(ws)
                assert code == 4401, token
                assert seen and seen[-1]["type"] == "error"
                assert "pools" not in json.dumps(seen)
        # Silence: the auth message must come within the time allowed.
        async with connect(url) as ws:
            code, seen = await until_closed(ws)
            assert code == 4401 and seen[-1]["error"] == "auth_timeout"
        # Observers see aggregated statistics only.
        async with connect(url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": make_token("observer")}))
            code, seen = await until_closed(ws)
            assert code == 4403 and seen[-1]["error"] == "forbidden_role"


async def test_snapshot_then_only_matching_changes_in_order_once(make_feed, make_token):
    token = make_token("prosecutor", institution_id="fgr")
    async with make_feed(options=FAST, pools=_pools()) as feed:
        everything, snap_all = await _subscribe(feed, token)
        jalisco, snap_14 = await _subscribe(feed, token, {"state": "14"})
        one_facility, snap_fac = await _subscribe(feed, token, {"facility_id": "fac-women09"})
        girl, snap_girl = await _subscribe(
            feed, token, {"profile": {"sex": "F", "age": 15, "role": "victim"}}
        )
        assert snap_all["type"] == "snapshot" and snap_all["sequence"] == 0
        assert sorted(p["pool_id"] for p in snap_all["pools"]) == ["girls09", "men14", "women09"]
        assert [p["pool_id"] for p in snap_14["pools"]] == ["men14"]
        assert [p["pool_id"] for p in snap_fac["pools"]] == ["women09"]
        assert [p["pool_id"] for p in snap_girl["pools"]] == ["girls09"]
        assert set(snap_all["pools"][0]) == set(pool_row("x"))

        s1 = await feed.change("girls09", occupied=3, available=7)
        s2 = await feed.change("men14", occupied=1, available=9)
        s3 = await feed.change("girls09", occupied=4, available=6)
        # The same change delivered twice (a second event for the same pool version).
        dup = await feed.publish(pool_event(feed.pools["girls09"]))
        s4 = await feed.change("women09", held=2, available=6)
        assert [s1, s2, s3, dup, s4] == [1, 2, 3, 4, 5]

        got = [await _recv(everything) for _ in range(4)]
        assert [(m["pool_id"], m["version"], m["sequence"]) for m in got] == [
            ("girls09", 2, 1),
            ("men14", 2, 2),
            ("girls09", 3, 3),
            ("women09", 2, 5),
        ]
        assert got[2]["available"] == 6 and got[2]["occupied"] == 4 and got[2]["type"] == "pool"
        assert [(m["pool_id"], m["version"]) for m in [await _recv(girl), await _recv(girl)]] == [
            ("girls09", 2),
            ("girls09", 3),
        ]
        assert (await _recv(jalisco))["pool_id"] == "men14"
        assert (await _recv(one_facility))["pool_id"] == "women09"
        # Nothing else is pending for the filtered clients: the next thing is a new change.
        await feed.change("men14", occupied=2, available=8)
        nxt = await _recv(everything)
        assert (nxt["pool_id"], nxt["version"]) == ("men14", 3)
        assert (await _recv(jalisco))["version"] == 3
        await feed.change("women09", held=0, available=8)
        assert (await _recv(one_facility))["version"] == 3
        # A facility status change reaches the clients that see one of its pools.
        await feed.publish(
            Event(
                type="capacity.facility.status_changed",
                aggregate_type="facility",
                aggregate_id="fac-women09",
                aggregate_version=2,
                payload={"facility_id": "fac-women09", "status": "suspended"},
            )
        )
        fac = await _recv(one_facility)
        assert (fac["type"], fac["facility_id"], fac["status"]) == (
            "facility",
            "fac-women09",
            "suspended",
        )
        assert (await _recv(everything))["pool_id"] == "women09"
        assert (await _recv(everything))["type"] == "facility"
        # Its pools are no longer offered: they leave the views that showed them.
        await feed.change("women09", facility_status="suspended")
        removed = await _recv(one_facility)
        assert (removed["type"], removed["pool_id"], removed["version"]) == (
            "pool_removed",
            "women09",
            4,
        )
        assert (await _recv(everything))["type"] == "pool_removed"
        await feed.change("men14", occupied=3, available=7)
        assert (await _recv(jalisco))["version"] == 4  # the facility message was not for it
        # A pool whose eligibility changes leaves the girl's view explicitly.
        await feed.change("girls09", min_age=16)
        gone = await _recv(girl)
        assert gone["type"] == "pool_removed" and gone["pool_id"] == "girls09"
        for ws in (everything, jalisco, one_facility, girl):
            await ws.close()


async def test_resume_replays_what_was_missed_then_goes_live(make_feed, make_token):
    token = make_token("dif_officer")
    async with make_feed(options=FAST, pools=_pools()) as feed:
        ws, _ = await _subscribe(feed, token, {"state": "09"})
        await feed.change("girls09", available=7)
        seen = await _recv(ws)
        assert seen["sequence"] == 1
        await ws.close()
        # While the client is away: one change it wants, one it does not, one it wants.
        await feed.change("women09", available=5)
        await feed.change("men14", available=1)
        await feed.change("girls09", available=6)
        ws, first = await _subscribe(feed, token, {"state": "09"}, resume_from=1)
        second = await _recv(ws)
        assert [
            (m["type"], m["pool_id"], m["version"], m["sequence"]) for m in (first, second)
        ] == [
            ("pool", "women09", 2, 2),
            ("pool", "girls09", 3, 4),
        ]
        await feed.change("women09", available=4)
        live = await _recv(ws)
        assert (live["pool_id"], live["version"], live["sequence"]) == ("women09", 3, 5)
        await ws.close()
        # Nothing missed: no snapshot, no replay, just the next change.
        ws = await _open(feed, token)
        await ws.send(json.dumps({"type": "subscribe", "filters": {}, "resume_from": 5}))
        await feed.change("men14", available=0)
        nxt = await _recv(ws)
        assert (nxt["type"], nxt["pool_id"], nxt["sequence"]) == ("pool", "men14", 6)
        await ws.close()


async def test_resume_from_a_forgotten_or_unknown_position_gets_a_reset_snapshot(
    make_feed, make_token
):
    token = make_token("prosecutor")
    async with make_feed(options=FAST, pools=_pools(), bus=InProcessBus(retain=3)) as feed:
        for _ in range(6):
            await feed.change("girls09")
        # Sequences 1..3 are no longer retained: a replay would have a hole.
        ws, snap = await _subscribe(feed, token, {}, resume_from=1)
        assert snap["type"] == "snapshot" and snap["reset"] is True and snap["sequence"] == 6
        girls = next(p for p in snap["pools"] if p["pool_id"] == "girls09")
        assert girls["version"] == 7
        await feed.change("girls09")
        assert (await _recv(ws))["version"] == 8
        await ws.close()
        # A position the bus never reached (the stream was reset): a reset snapshot too.
        ws, snap = await _subscribe(feed, token, {}, resume_from=999)
        assert snap["type"] == "snapshot" and snap["reset"] is True
        await ws.close()


class NeverReadingClient:
    """A WebSocket client that authenticates, subscribes, then stops reading its socket."""

    def __init__(self, url: str, port: int) -> None:
        self.proto = ClientProtocol(parse_uri(url), max_size=None)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        for chunk in self.proto.data_to_send():
            await loop.sock_sendall(self.sock, chunk)

    async def _pump(self) -> list[Any]:
        data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self.sock, 65536), 10)
        if not data:
            self.proto.receive_eof()
        else:
            self.proto.receive_data(data)
        return list(self.proto.events_received())

    async def start(self, token: str) -> None:
        self.proto.send_request(self.proto.connect())
        await self._flush()
        while self.proto.handshake_exc is None and not any(
            isinstance(e, Response) for e in await self._pump()
        ):
            pass
        for message in ({"type": "auth", "token": token}, {"type": "subscribe", "filters": {}}):
            self.proto.send_text(json.dumps(message).encode())
        await self._flush()

    async def read_until_closed(self) -> tuple[int | None, int]:
        """Finally read everything; the close code and how many messages came first."""
        frames = 0
        while self.proto.close_rcvd is None:
            events = await self._pump()
            frames += sum(1 for e in events if isinstance(e, Frame) and e.opcode == Opcode.TEXT)
            if self.proto.state.name == "CLOSED":
                break
        self.sock.close()
        return (self.proto.close_rcvd.code if self.proto.close_rcvd else None), frames


async def test_a_slow_client_is_dropped_while_another_keeps_receiving(make_feed, make_token):
    token = make_token("shelter_coordinator")
    options = LiveOptions(heartbeat_seconds=30, queue_size=20, close_timeout_seconds=30)
    padding = "x" * 16_000  # big messages fill the socket buffers quickly
    async with make_feed(options=options, pools=_pools()) as feed:
        hub = feed.runtime.state["capacity_live_hub"]
        fast, _ = await _subscribe(feed, token)
        slow = NeverReadingClient(feed.server.ws_url, feed.server.port)
        await slow.start(token)
        await _until(lambda: len(hub.connections) == 2 and all(c.live for c in hub.connections))
        received: list[int] = []

        async def read_fast() -> None:
            while True:
                msg = await _recv(fast)
                received.append(msg["version"])

        reader = asyncio.create_task(read_fast())
        published = 0
        # Keep publishing until the server gives up on the client that does not read.
        while published < 3000 and not any(c.close_code == 1013 for c in hub.connections):
            await feed.change("girls09", facility_name=padding)
            published += 1
        for _ in range(5):  # a few more: the other client must not notice
            await feed.change("girls09", facility_name=padding)
            published += 1
        await _until(lambda: len(received) >= published)
        reader.cancel()
        assert received == list(range(2, published + 2))
        # The slow client, once it finally reads, finds it was closed as too slow.
        code, frames = await slow.read_until_closed()
        assert code == 1013
        assert frames < published
        await fast.close()


async def test_malformed_frames_get_an_error_and_a_close_never_a_crash(make_feed, make_token):
    token = make_token("prosecutor")
    async with make_feed(options=FAST, pools=_pools()) as feed:
        cases: list[tuple[Any, int, str]] = [
            ("{not json", 1003, "invalid_json"),
            (json.dumps({"type": "dance"}), 1003, "unknown_type"),
            (json.dumps([1, 2]), 1003, "invalid_message"),
            (json.dumps({"type": "ping", "pad": "x" * 70_000}), 1009, "frame_too_large"),
            (b"\x00\x01", 1003, "unsupported_frame"),
        ]
        for frame, code, error in cases:
            ws = await _open(feed, token)
            await ws.send(frame)
            got_code, seen = await until_closed(ws)
            assert (got_code, seen[-1]["error"]) == (code, error)
            assert seen[-1]["type"] == "error" and seen[-1]["detail"]
        # Before authenticating too.
        async with connect(feed.server.ws_url) as ws:
            await ws.send("nope")
            got_code, seen = await until_closed(ws)
            assert got_code == 1003 and seen[-1]["error"] == "invalid_json"
        # Bad filters or a bad resume position are answered; the connection stays usable.
        ws = await _open(feed, token)
        await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "99"}}))
        assert (await _recv(ws))["error"] == "invalid_filters"
        await ws.send(json.dumps({"type": "subscribe", "filters": {}, "resume_from": "x"}))
        assert (await _recv(ws))["error"] == "invalid_resume"
        await ws.send(json.dumps({"type": "ping"}))
        assert (await _recv(ws))["type"] == "pong"
        await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "14"}}))
        snap = await _recv(ws)
        assert [p["pool_id"] for p in snap["pools"]] == ["men14"]
        await ws.send(json.dumps({"type": "subscribe", "filters": {}}))
        assert (await _recv(ws))["error"] == "already_subscribed"
        await ws.close()
        # The server is still serving.
        ws, snap = await _subscribe(feed, token)
        assert len(snap["pools"]) == 3
        await ws.close()


async def test_token_expiry_closes_4401_unless_renewed(make_feed, make_token):
    async with make_feed(options=FAST, pools=_pools()) as feed:
        # ttl 2: a token's times are whole seconds, so a ttl of 1 may have only
        # milliseconds left when it is made, and expire before the subscription is answered
        short = make_token("prosecutor", sub="fiscal-1", ttl=2)
        ws, _ = await _subscribe(feed, short)
        code, seen = await until_closed(ws)
        assert code == 4401 and seen[-1]["error"] == "token_expired"

        ws, _ = await _subscribe(feed, make_token("prosecutor", sub="fiscal-1", ttl=2))
        await ws.send(
            json.dumps({"type": "auth", "token": make_token("prosecutor", sub="fiscal-1")})
        )
        assert (await _recv(ws))["type"] == "ready"
        await asyncio.sleep(2.5)  # past the first token's expiry
        await feed.change("men14")
        assert (await _recv(ws))["pool_id"] == "men14"
        # Someone else's token cannot take over the connection.
        await ws.send(json.dumps({"type": "auth", "token": make_token("prosecutor")}))
        code, seen = await until_closed(ws)
        assert code == 4401


async def test_heartbeats_and_the_maximum_lifetime(make_feed, make_token):
    options = LiveOptions(heartbeat_seconds=0.2, max_lifetime_seconds=1.0)
    async with make_feed(options=options, pools=_pools()) as feed:
        ws, _ = await _subscribe(feed, make_token("ceav_officer"))
        code, seen = await until_closed(ws)
        assert code == 4000
        assert any(m["type"] == "ping" for m in seen)
        assert ws.close_reason == "reconnect"


async def test_a_failing_snapshot_source_is_an_error_and_1011_not_a_crash(make_feed, make_token):
    from capacity.live import set_snapshot_provider

    def broken(filters: dict[str, Any]) -> list[dict[str, Any]]:
        raise ConnectionError("database away")

    async with make_feed(options=FAST, pools=_pools()) as feed:
        set_snapshot_provider(broken)
        ws = await _open(feed, make_token("prosecutor"))
        await ws.send(json.dumps({"type": "subscribe", "filters": {}}))
        code, seen = await until_closed(ws)
        assert code == 1011 and seen[-1]["error"] == "unavailable"
        set_snapshot_provider(lambda filters: _pools())
        ws, snap = await _subscribe(feed, make_token("prosecutor"))
        assert len(snap["pools"]) == 3
        await ws.close()

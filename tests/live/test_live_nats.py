"""The live feed across processes on real NATS, and the outbox surviving a broker outage."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import MetaData
from sqlmodel import Session
from websockets.asyncio.client import connect

from capacity.live import LiveOptions
from services.bus_nats import NatsBus
from services.db import ServiceDatabase
from services.events import Event, Outbox, outbox_table
from services.relay import OutboxRelay
from services.settings import get_settings
from tests.live.conftest import delete_stream, pool_event, pool_row

pytestmark = pytest.mark.nats


async def _until(predicate: Any) -> None:
    for _ in range(1500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


async def _recv(ws: Any) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if msg["type"] != "ping":
            return msg


async def test_a_change_published_by_one_instance_reaches_a_client_of_another(
    make_feed, make_token, nats_url, nats_names
):
    stream, prefix = nats_names
    pools = [pool_row("p1", state="09"), pool_row("p2", state="14")]
    options = LiveOptions(heartbeat_seconds=30)

    def bus() -> NatsBus:
        return NatsBus(url=nats_url, stream=stream, subject_prefix=prefix, idle_heartbeat=0.5)

    token = make_token("prosecutor")
    try:
        async with (
            make_feed(options=options, pools=pools, bus=bus()) as one,
            make_feed(options=options, pools=pools, bus=bus()) as two,
        ):
            ws = await connect(two.server.ws_url)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert (await _recv(ws))["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe", "filters": {"state": "09"}}))
            snap = await _recv(ws)
            assert snap["type"] == "snapshot" and [p["pool_id"] for p in snap["pools"]] == ["p1"]
            assert snap["sequence"] == 0
            seq_other = await one.change("p2", available=3)  # not for this client
            seq = await one.change("p1", available=4, occupied=6)
            msg = await _recv(ws)
            assert (msg["type"], msg["pool_id"], msg["version"], msg["sequence"]) == (
                "pool",
                "p1",
                2,
                seq,
            )
            assert msg["available"] == 4 and seq == seq_other + 1
            # The same change published again (a relay retry) is not shown twice.
            await one.publish(pool_event(one.pools["p1"]))
            await one.change("p1", available=3, occupied=7)
            nxt = await _recv(ws)
            assert (nxt["pool_id"], nxt["version"]) == ("p1", 3)
            await ws.close()
            # A client of instance 2 resumes from a position reached through instance 1.
            ws = await connect(two.server.ws_url)
            await ws.send(json.dumps({"type": "auth", "token": token}))
            await _recv(ws)
            await ws.send(json.dumps({"type": "subscribe", "filters": {}, "resume_from": seq}))
            replayed = [await _recv(ws) for _ in range(2)]
            assert [(m["pool_id"], m["version"]) for m in replayed] == [("p1", 2), ("p1", 3)]
            await ws.close()
    finally:
        await delete_stream(nats_url, stream)


# A service with nothing but an outbox, like any domain service's.
_metadata = MetaData()
_outbox = Outbox(outbox_table(_metadata))
_db = ServiceDatabase("liveoutbox", _metadata)


@pytest.fixture
def outbox_db(tmp_path):
    get_settings().auto_migrate = False
    _db.configure(f"sqlite:///{tmp_path}/outbox.db")
    _metadata.create_all(_db.engine)
    yield _db
    _db.dispose()


def _write_event(n: int) -> str:
    event = Event(
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id="p1",
        aggregate_version=n,
        payload={"pool_id": "p1", "version": n},
    )
    with _db.new_session(write=True) as session:
        _outbox.add(session, event)
        session.commit()
    return event.id


async def test_events_written_while_the_broker_is_down_all_arrive_in_order_once(
    private_nats, outbox_db
):
    publisher = NatsBus(url=private_nats.url, stream="OUTAGE", reconnect_wait=0.2)
    consumer = NatsBus(url=private_nats.url, stream="OUTAGE", idle_heartbeat=0.3)
    await publisher.start()
    await consumer.start()
    relay = OutboxRelay(outbox_db, _outbox, publisher, poll_interval=0.1)
    relay.start()
    got: list[tuple[int, int]] = []

    async def on_event(ev: Event) -> None:
        got.append((ev.aggregate_version, ev.sequence or 0))

    try:
        await consumer.subscribe("canaliza.capacity.>", on_event)
        await asyncio.to_thread(_write_event, 1)
        await _until(lambda: len(got) == 1)
        await asyncio.to_thread(private_nats.stop)
        await _until(lambda: not publisher._connected())
        for n in range(2, 7):  # committed while nothing can be published
            await asyncio.to_thread(_write_event, n)
        await asyncio.sleep(0.5)
        assert len(got) == 1
        with Session(outbox_db.engine) as s:
            pending = _outbox.pending(s.connection())
        assert [e.aggregate_version for _, e in pending] == [2, 3, 4, 5, 6]
        await asyncio.to_thread(private_nats.start)  # same port and store: a restart
        await _until(lambda: len(got) >= 6)
        await asyncio.to_thread(_write_event, 7)
        await _until(lambda: len(got) >= 7)
        await asyncio.sleep(0.5)
        assert got == [(n, n) for n in range(1, 8)]
        with Session(outbox_db.engine) as s:
            assert _outbox.pending(s.connection()) == []
    finally:
        await relay.stop()
        await publisher.close()
        await consumer.close()

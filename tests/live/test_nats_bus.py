"""NatsBus against real NATS JetStream: dedupe, order, replay, and surviving outages."""

from __future__ import annotations

import asyncio

import pytest

from services.bus_factory import create_bus
from services.bus_nats import BusUnavailable, NatsBus
from services.events import Event

pytestmark = pytest.mark.nats


def _event(aggregate_id: str, version: int = 1, kind: str = "capacity.pool.changed") -> Event:
    return Event(
        type=kind,
        aggregate_type="pool",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        payload={"pool_id": aggregate_id, "version": version},
    )


async def _until(predicate, *, step: float = 0.05, tries: int = 400) -> None:
    for _ in range(tries):
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError("condition never became true")


async def test_create_bus_builds_a_nats_bus(nats_url):
    bus = create_bus("nats", url=nats_url, stream="X")
    assert isinstance(bus, NatsBus) and bus.subject_for("canaliza.a.b") == "canaliza.a.b"


async def test_starting_without_a_broker_fails_visibly():
    from tests.live.conftest import free_port

    bus = NatsBus(url=f"nats://127.0.0.1:{free_port()}", stream="NOPE", start_timeout=1)
    with pytest.raises(BusUnavailable):
        await bus.start()
    with pytest.raises(BusUnavailable):
        await bus.publish(_event("x"))
    assert not await bus.healthy()


async def test_publish_is_idempotent_by_event_id_and_positions_are_reported(make_nats_bus):
    bus = await make_nats_bus()
    assert await bus.last_sequence() == 0
    first = _event("p1")
    assert await bus.publish(first) == 1
    assert await bus.publish(first) == 1  # a re-publish after a crash is not a new event
    assert await bus.publish(_event("p2")) == 2
    assert await bus.last_sequence() == 2
    assert await bus.first_sequence() == 1
    assert await bus.healthy()


async def test_subscribers_get_new_events_in_order_and_replays_from_a_sequence(make_nats_bus):
    bus = await make_nats_bus()
    other = await make_nats_bus()  # a second process on the same stream
    await bus.publish(_event("old"))
    live: list[Event] = []
    only_pools: list[str] = []

    async def on_live(ev: Event) -> None:
        live.append(ev)

    async def on_pool(ev: Event) -> None:
        only_pools.append(ev.type)

    sub = await other.subscribe("canaliza.capacity.>", on_live)
    sub2 = await other.subscribe("canaliza.capacity.pool.changed", on_pool)
    for i in range(20):
        await bus.publish(_event(f"p{i}", i))
    await bus.publish(_event("f", 1, kind="capacity.facility.changed"))
    await _until(lambda: len(live) == 21)
    assert [e.aggregate_id for e in live[:20]] == [f"p{i}" for i in range(20)]
    assert [e.sequence for e in live] == list(range(2, 23))
    assert live[0].payload == {"pool_id": "p0", "version": 0}
    await _until(lambda: len(only_pools) == 20)
    await sub.close()
    await sub2.close()

    replay: list[int] = []

    async def on_replay(ev: Event) -> None:
        replay.append(ev.sequence or 0)

    sub3 = await other.subscribe("canaliza.>", on_replay, deliver_from=18)
    await _until(lambda: len(replay) == 5)
    assert replay == [18, 19, 20, 21, 22]
    await sub3.close()


async def test_a_failing_handler_does_not_stop_the_subscription(make_nats_bus):
    bus = await make_nats_bus()
    got: list[str] = []

    async def flaky(ev: Event) -> None:
        if ev.aggregate_id == "boom":
            raise RuntimeError("handler bug")
        got.append(ev.aggregate_id)

    await bus.subscribe("canaliza.>", flaky)
    for name in ("a", "boom", "b"):
        await bus.publish(_event(name))
    await _until(lambda: got == ["a", "b"])


async def test_a_lost_connection_is_resumed_without_gaps_or_duplicates(make_nats_bus):
    publisher = await make_nats_bus()
    follower = await make_nats_bus()
    got: list[int] = []

    async def on_event(ev: Event) -> None:
        got.append(ev.sequence or 0)

    await follower.subscribe("canaliza.>", on_event)
    for i in range(5):
        await publisher.publish(_event(f"a{i}"))
    await _until(lambda: len(got) == 5)
    # Drop the follower's TCP connection under it; events keep coming meanwhile.
    assert follower._nc is not None
    transport = follower._nc._transport
    assert transport is not None
    transport.close()
    for i in range(5):
        await publisher.publish(_event(f"b{i}"))
    await _until(lambda: len(got) >= 10)
    await asyncio.sleep(0.5)
    assert got == list(range(1, 11))


async def test_broker_restart_publishing_fails_fast_then_everything_flows(private_nats, tmp_path):
    stream = "RESTART"
    pub = NatsBus(url=private_nats.url, stream=stream, idle_heartbeat=0.3, reconnect_wait=0.2)
    sub_bus = NatsBus(url=private_nats.url, stream=stream, idle_heartbeat=0.3, reconnect_wait=0.2)
    await pub.start()
    await sub_bus.start()
    got: list[int] = []

    async def on_event(ev: Event) -> None:
        got.append(ev.sequence or 0)

    try:
        await sub_bus.subscribe("canaliza.>", on_event)
        await pub.publish(_event("before"))
        await _until(lambda: got == [1])
        await asyncio.to_thread(private_nats.stop)
        await _until(lambda: not pub._connected())
        with pytest.raises(BusUnavailable):
            await pub.publish(_event("during"))
        assert not await pub.healthy()
        await asyncio.to_thread(private_nats.start)  # same port, same store
        await _until(lambda: pub._connected() and sub_bus._connected())
        for i in range(3):
            await pub.publish(_event(f"after{i}"))
        await _until(lambda: len(got) >= 4)
        await asyncio.sleep(0.5)
        assert got == [1, 2, 3, 4]
    finally:
        await pub.close()
        await sub_bus.close()

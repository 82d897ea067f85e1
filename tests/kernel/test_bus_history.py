"""The in-process bus keeps what it can replay as text (issue 18): a full collection of a
long-running embedded server does not walk tens of thousands of retained events, and a
replay still hands over the same events."""

from __future__ import annotations

import asyncio
import gc

from services.bus import InProcessBus
from services.events import Event


def _event(n: int) -> Event:
    return Event(type="capacity.pool.changed", aggregate_type="pool", aggregate_id=f"p{n % 7}",
                 aggregate_version=n, payload={"pool_id": f"p{n % 7}", "people": [{"age": n}]})  # fmt: skip


async def test_the_retained_history_is_not_tracked_and_replays_the_same_events():
    bus = InProcessBus(retain=500)
    sent = [_event(n) for n in range(600)]
    for event in sent:
        await bus.publish(event)
    gc.collect()
    tracked = sum(gc.is_tracked(entry) for entry in bus._history)
    assert tracked == 0
    got: list[Event] = []

    async def on_event(event: Event) -> None:
        got.append(event)

    first = await bus.first_sequence()
    assert first == 101  # 600 published, 500 retained
    sub = await bus.subscribe("canaliza.capacity.>", on_event, deliver_from=550)
    for _ in range(100):
        if len(got) == 51:
            break
        await asyncio.sleep(0.01)
    await sub.close()
    assert [e.sequence for e in got] == list(range(550, 601))
    assert [e.sequence for e in bus.retained()] == list(range(101, 601))
    assert [e.model_dump(exclude={"sequence"}) for e in got] == [
        e.model_dump(exclude={"sequence"}) for e in sent[549:]
    ]

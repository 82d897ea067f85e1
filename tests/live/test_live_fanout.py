"""Fan-out by filter class: one match per class and event, the same text to every member,
and a member whose view differs from its class's still gets each change exactly once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from capacity.live_fanout import FilterClass, start_now
from capacity.live_protocol import compile_filters, dumps
from tests.live.conftest import pool_event, pool_row


class Member:
    """What a filter class needs of a live connection, recording what it is sent."""

    def __init__(self, versions: dict[str, int] | None = None) -> None:
        self.versions = dict(versions or {})
        self.facilities = {f"fac-{pool_id}" for pool_id in self.versions}
        self.own: dict[str, int | None] = {}
        self.got: list[dict[str, Any]] = []
        self.texts: list[str] = []

    def send_data(self, text: str) -> None:
        self.texts.append(text)
        self.got.append(json.loads(text))


def _class(filters: dict[str, Any]) -> tuple[FilterClass, list[int]]:
    matches = compile_filters(filters)
    calls = [0]

    def counted(pool: dict[str, Any]) -> bool:
        calls[0] += 1
        return matches(pool)

    return FilterClass("k", counted), calls


def _change(filter_class: FilterClass, row: dict[str, Any], sequence: int) -> None:
    event = pool_event(row)
    event.sequence = sequence
    filter_class.pool_changed(
        event, lambda: dumps({**event.payload, "type": "pool", "sequence": sequence})
    )


def _seen(member: Member) -> list[tuple[str, str, int]]:
    return [(m["type"], m["pool_id"], m["version"]) for m in member.got]


def test_one_match_per_event_and_the_same_text_for_every_member():
    filter_class, calls = _class({"state": "09"})
    members = [Member({"p1": 1}) for _ in range(50)]
    for member in members:
        filter_class.join(member)
    _change(filter_class, pool_row("p1", version=2), 1)
    _change(filter_class, pool_row("p9", state="14", version=2), 2)  # another state's pool
    assert calls[0] == 2
    assert all(_seen(m) == [("pool", "p1", 2)] for m in members)
    assert len({id(m.texts[0]) for m in members}) == 1  # one encoding, shared


def test_a_member_with_a_newer_snapshot_gets_no_change_twice_and_misses_none():
    filter_class, _ = _class({"state": "09"})
    old = Member({"p1": 1})
    filter_class.join(old)
    # The newcomer's snapshot already shows version 2 of p1 (the bus has not brought it
    # yet) and p2, which the class has not seen.
    new = Member({"p1": 2, "p2": 1})
    filter_class.join(new)
    _change(filter_class, pool_row("p1", version=2), 1)
    _change(filter_class, pool_row("p2", version=1), 2)
    _change(filter_class, pool_row("p1", version=3), 3)
    assert _seen(old) == [("pool", "p1", 2), ("pool", "p2", 1), ("pool", "p1", 3)]
    assert _seen(new) == [("pool", "p1", 3)]
    assert new.own == {} and not filter_class.diverging  # back in step with its class


def test_a_resumed_member_is_told_of_removals_only_for_pools_it_was_shown():
    filter_class, _ = _class({"state": "09"})
    first = Member({"p1": 1, "p2": 1})
    filter_class.join(first)
    # A resume replayed only p2: the server does not know the client holds p1.
    resumed = Member({"p2": 1})
    filter_class.join(resumed)
    _change(filter_class, pool_row("p1", state="14", version=2), 1)  # p1 leaves the state
    _change(filter_class, pool_row("p2", state="14", version=2), 2)
    assert _seen(first) == [("pool_removed", "p1", 2), ("pool_removed", "p2", 2)]
    assert _seen(resumed) == [("pool_removed", "p2", 2)]


async def test_a_send_with_room_finishes_at_once_and_one_that_waits_is_handed_back():
    done: list[str] = []

    async def immediate() -> None:
        done.append("now")

    assert start_now(immediate()) is None and done == ["now"]

    async def waits() -> None:
        await asyncio.sleep(0)
        done.append("later")

    rest = start_now(waits())
    assert rest is not None and done == ["now"]
    await rest
    assert done == ["now", "later"]


class GatedBus:
    """A bus whose position reads wait until the test lets each one answer."""

    def __init__(self) -> None:
        self.gates: list[asyncio.Event] = []

    async def last_sequence(self) -> int:
        gate = asyncio.Event()
        self.gates.append(gate)
        answer = 10 * len(self.gates)
        await gate.wait()
        return answer


async def test_a_subscribe_storm_shares_position_reads_never_an_older_one():
    from capacity.live_hub import LiveHub

    bus = GatedBus()
    hub = LiveHub(bus, lambda filters: [])  # type: ignore[arg-type]
    first = asyncio.ensure_future(hub.position())
    await asyncio.sleep(0)
    # These ask while the first read is out: they must not get its (older) answer.
    later = [asyncio.ensure_future(hub.position()) for _ in range(50)]
    await asyncio.sleep(0)
    assert len(bus.gates) == 1
    bus.gates[0].set()
    assert await first == 10
    await asyncio.sleep(0)
    assert len(bus.gates) == 2  # one more read for all fifty
    bus.gates[1].set()
    assert [await task for task in later] == [20] * 50
    assert hub.position_reads == 2

"""The outbox relay marks what it published in one write now and then, not once per pass
(issue 18: each mark is a write transaction beside the service's own), and never sends a
published, not yet marked row twice, including one committed late with a lower sequence."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import MetaData, insert, select

from services.bus import InProcessBus
from services.db import ServiceDatabase
from services.events import Event, Outbox, outbox_table
from services.relay import OutboxRelay
from services.settings import get_settings

_metadata = MetaData()
_outbox = Outbox(outbox_table(_metadata))
_db = ServiceDatabase("relaytest", _metadata)


@pytest.fixture
def outbox_db(tmp_path: Any) -> Any:
    get_settings().auto_migrate = False
    _db.configure(f"sqlite:///{tmp_path}/outbox.db")
    _metadata.create_all(_db.engine)
    yield _db
    _db.dispose()


def _event(n: int) -> Event:
    return Event(type="capacity.pool.changed", aggregate_type="pool", aggregate_id="p1",
                 aggregate_version=n, payload={"pool_id": "p1", "version": n})  # fmt: skip


def _write(n: int, *, seq: int | None = None) -> None:
    event = _event(n)
    with _db.new_session(write=True) as session:
        if seq is None:
            _outbox.add(session, event)
        else:  # a row whose sequence was taken before rows already committed (PostgreSQL)
            session.execute(
                insert(_outbox.table).values(
                    seq=seq, event_id=event.id, type=event.type, aggregate_id="p1",
                    body=event.model_dump(mode="json", exclude={"sequence"}),
                    created_at=event.occurred_at,
                )
            )  # fmt: skip
        session.commit()


def _unmarked() -> list[int]:
    with _db.engine.connect() as conn:
        table = _outbox.table
        return list(
            conn.execute(select(table.c.seq).where(table.c.published_at.is_(None))).scalars()
        )


async def _until(predicate: Any) -> None:
    for _ in range(300):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_published_rows_are_marked_together_and_never_sent_twice(outbox_db):
    bus = InProcessBus()
    got: list[int] = []

    async def on_event(event: Event) -> None:
        got.append(event.aggregate_version)

    await bus.subscribe("canaliza.>", on_event)
    relay = OutboxRelay(outbox_db, _outbox, bus, poll_interval=0.2, mark_interval=60)
    marks: list[list[int]] = []
    real_mark = relay._mark

    def counted(seqs: list[int]) -> None:
        marks.append(list(seqs))
        real_mark(seqs)

    relay._mark = counted  # type: ignore[method-assign]
    for n in (1, 2, 3):
        _write(n)
    await relay.drain()
    await relay.drain()  # nothing new: the three are published and not marked, not resent
    _write(4, seq=100)
    await relay.drain()
    _write(5, seq=50)  # committed after 100 was published, with a lower sequence
    await relay.drain()
    await _until(lambda: len(got) == 5)
    assert got == [1, 2, 3, 4, 5]
    assert marks == []  # within the mark interval: no write transaction per pass
    assert sorted(_unmarked()) == [1, 2, 3, 50, 100]
    relay.start()  # idle for one poll: what was published is marked, in one write
    await _until(lambda: _unmarked() == [])
    assert len(marks) == 1 and sorted(marks[0]) == [1, 2, 3, 50, 100]
    _write(6)
    relay.wake()
    await _until(lambda: len(got) == 6)
    await relay.stop()  # stopping marks the rest
    assert _unmarked() == []
    assert got == [1, 2, 3, 4, 5, 6]


async def test_a_new_relay_sends_again_what_was_published_and_not_marked(outbox_db):
    """At least once: a process that stopped before marking sends those rows again; the bus
    drops the repeated ids."""
    bus = InProcessBus()
    got: list[int] = []

    async def on_event(event: Event) -> None:
        got.append(event.aggregate_version)

    await bus.subscribe("canaliza.>", on_event)
    for n in (1, 2):
        _write(n)
    first = OutboxRelay(outbox_db, _outbox, bus, mark_interval=60)
    await first.drain()  # published, never marked (the process "dies" here)
    second = OutboxRelay(outbox_db, _outbox, bus, mark_interval=60)
    assert await second.drain() == 2
    await second.mark()
    await _until(lambda: len(got) == 2)
    await asyncio.sleep(0.05)
    assert got == [1, 2] and _unmarked() == []

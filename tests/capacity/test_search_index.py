"""The search index is kept current by announcements, not by reading on each request."""

from __future__ import annotations

import asyncio
import threading

import anyio.to_thread
import pytest
from sqlalchemy import create_engine, event, text

from capacity import main as capacity_main
from capacity.database import db
from capacity.search import read_model
from services.events import Event

MOTHER = {"sex": "F", "age": 30, "role": "victim"}


def _available(answer: dict) -> list[int]:
    return [r["available"] for r in answer["results"]]


async def _caught_up() -> None:
    for _ in range(500):
        if not read_model.stale:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the search index never caught up")


@pytest.fixture
def no_periodic_check(monkeypatch):
    """Before the app starts: the refresher's periodic check never comes during a test."""
    monkeypatch.setattr(capacity_main, "SEARCH_INDEX_CHECK_SECONDS", 3600.0)


async def test_a_search_reads_no_database_when_nothing_changed(no_periodic_check, cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], total=3)
    assert _available(await cap.search([MOTHER])) == [3]
    await _caught_up()
    # The relay and the hold-expiry sweep use the engine too (in worker threads): count
    # what the search does on the event loop's thread, and every reload of the model.
    loop_thread = threading.get_ident()
    checkouts: list[object] = []
    reloads: list[object] = []

    def checkout(*args: object) -> None:
        if threading.get_ident() == loop_thread:
            checkouts.append(args)

    real_refresh = read_model.refresh

    def refresh(conn: object) -> None:
        reloads.append(conn)
        real_refresh(conn)  # type: ignore[arg-type]

    event.listen(db.engine, "checkout", checkout)
    read_model.refresh = refresh  # type: ignore[method-assign]
    try:
        for age in (20, 30, 40):
            assert _available(await cap.search([{**MOTHER, "age": age}])) == [3]
    finally:
        event.remove(db.engine, "checkout", checkout)
        del read_model.refresh
    assert checkouts == [] and reloads == []


async def test_a_local_write_is_seen_by_the_next_search(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    assert _available(await cap.search([MOTHER])) == [3]
    assert (await cap.hold([{"pool_id": pool["id"], "beds": 1}])).status_code == 201
    # No waiting: the commit marked the index changed before the hold was answered.
    assert _available(await cap.search([MOTHER])) == [2]


async def test_another_replicas_write_arrives_with_its_event(no_periodic_check, cap, bus):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    assert _available(await cap.search([MOTHER])) == [3]
    await _caught_up()
    # Another process takes a bed: its own engine, no hook of this process runs.
    other = create_engine(db.url)
    with other.begin() as conn:
        conn.execute(text("UPDATE capacity_revision SET revision = revision + 1 WHERE id = 1"))
        rev = conn.execute(text("SELECT revision FROM capacity_revision WHERE id = 1")).scalar()
        conn.execute(
            text("UPDATE pool SET occupied = occupied + 1, revision = :rev WHERE id = :id"),
            {"rev": rev, "id": pool["id"]},
        )
    other.dispose()
    assert _available(await cap.search([MOTHER])) == [3]  # nothing announced it yet
    await bus.publish(
        Event(
            type="capacity.pool.counts_changed",
            aggregate_type="pool",
            aggregate_id=pool["id"],
        )
    )
    for _ in range(500):
        if _available(await cap.search([MOTHER])) == [2]:
            break
        await asyncio.sleep(0.01)
    assert _available(await cap.search([MOTHER])) == [2]


async def test_a_search_catches_up_while_every_request_thread_is_taken(no_periodic_check, cap):
    """Under write load the request thread pool fills with writers queued for SQLite's
    write lock; a search that must catch up with a change does not wait behind them."""
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    assert _available(await cap.search([MOTHER])) == [3]
    await _caught_up()
    limiter = anyio.to_thread.current_default_thread_limiter()
    holders = [object() for _ in range(int(limiter.total_tokens))]
    for holder in holders:
        await limiter.acquire_on_behalf_of(holder)
    try:
        with db.unit_of_work() as session:  # a bed taken, announced by the commit hook
            session.execute(
                text("UPDATE capacity_revision SET revision = revision + 1 WHERE id = 1")
            )
            session.execute(
                text(
                    "UPDATE pool SET occupied = occupied + 1, revision = "
                    "(SELECT revision FROM capacity_revision WHERE id = 1) WHERE id = :id"
                ),
                {"id": pool["id"]},
            )
        # A guard against hanging, not a timing check: with the catch-up in the pool, the
        # search would wait for a thread forever.
        answer = await asyncio.wait_for(cap.search([MOTHER]), timeout=60)
    finally:
        for holder in holders:
            limiter.release_on_behalf_of(holder)
    assert _available(answer) == [2]

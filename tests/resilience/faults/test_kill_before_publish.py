"""SIGKILL between the database commit and the event publish: the event still goes out.

A capacity service process (``canaliza serve capacity``, SQLite, NATS bus on our own
broker) runs with the relay's fault hook set: it kills itself with SIGKILL when it is
about to publish a ``capacity.pool.changed`` event — the change is committed, the event
is only in the outbox. Started again without the hook, the process must publish it:
exactly once on the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from canaliza.cluster import free_port
from services.bus_nats import NatsBus
from services.events import Event
from services.relay import KILL_BEFORE_PUBLISH_ENV
from tests.resilience.faults.conftest import FACILITY, POOL, Actors
from tests.resilience.faults.process import CapacityProcess, capacity_env, jwks_server
from tests.resilience.faults.record import record_fault
from tests.resilience.faults.servers import OwnNats

pytestmark = pytest.mark.resilience

KILLED_EVENT = "capacity.pool.changed"


def _outbox_rows(db_path: Path) -> list[tuple[str, str, str | None]]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return list(conn.execute("SELECT type, aggregate_id, published_at FROM outbox"))


async def _stream_events(url: str, stream: str, wanted: int) -> list[Event]:
    """Every event on the stream, read from its first sequence (bounded wait)."""
    bus = NatsBus(url=url, stream=stream, idle_heartbeat=0.3, start_timeout=10)
    await bus.start()
    seen: list[Event] = []

    async def handler(event: Event) -> None:
        seen.append(event)

    sub = await bus.subscribe("canaliza.>", handler, deliver_from=1)
    try:
        for _ in range(300):
            if len(seen) >= wanted and len(seen) >= await bus.last_sequence():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)
    finally:
        await sub.close()
        with contextlib.suppress(Exception):
            await bus._jetstream().delete_stream(stream)
        await bus.close()
    return seen


async def test_sigkill_between_commit_and_publish_still_delivers_the_event(
    tmp_path: Path, own_nats: OwnNats, actors: Actors, signing_key: Any, test_verifier: Any
) -> None:
    db_path = tmp_path / "capacity.db"
    stream = f"RESIL_KILL_{uuid.uuid4().hex[:8].upper()}"
    with jwks_server({"keys": [signing_key.as_dict(private=False)]}) as jwks_url:
        env = capacity_env(
            tmp_path,
            jwks_url,
            test_verifier.issuer,
            CANALIZA_CAPACITY_DATABASE_URL=f"sqlite:///{db_path}",
            CANALIZA_BUS="nats",
            CANALIZA_NATS_URL=own_nats.url,
            CANALIZA_NATS_STREAM=stream,
        )
        proc = CapacityProcess(env, free_port(), tmp_path / "capacity.log")
        proc.start(**{KILL_BEFORE_PUBLISH_ENV: KILLED_EVENT})
        try:
            await asyncio.to_thread(proc.wait_ready)
            async with httpx.AsyncClient(base_url=proc.url, timeout=30) as http:
                r = await http.post("/api/v1/facilities", json=FACILITY, headers=actors.admin())
                assert r.status_code == 201, r.text
                facility_id = r.json()["id"]
                r = await http.patch(
                    f"/api/v1/facilities/{facility_id}",
                    json={"status": "active", "reason": "visita de verificación"},
                    headers=actors.admin(),
                )
                assert r.status_code == 200, r.text
                # Creating a pool commits a pool.changed event: the relay dies before publishing.
                with contextlib.suppress(httpx.HTTPError):
                    await http.post(
                        f"/api/v1/facilities/{facility_id}/pools",
                        json={**POOL, "total": 5},
                        headers=actors.admin(),
                    )
            code = await asyncio.to_thread(proc.wait_exit)
            assert code == -9, f"the process was not SIGKILLed (exit {code})"
            pending = [(t, a) for t, a, published in _outbox_rows(db_path) if t == KILLED_EVENT]
            unpublished = [
                (t, a)
                for t, a, published in _outbox_rows(db_path)
                if t == KILLED_EVENT and published is None
            ]
            assert len(pending) == 1 and unpublished == pending, _outbox_rows(db_path)
            pool_id = pending[0][1]

            proc.start()  # again, without the fault hook
            await asyncio.to_thread(proc.wait_ready)
            events = await _stream_events(own_nats.url, stream, wanted=3)
            after = _outbox_rows(db_path)
        finally:
            proc.stop()

    delivered = [e for e in events if e.type == KILLED_EVENT and e.aggregate_id == pool_id]
    record_fault(
        "sigkill_between_commit_and_publish",
        injected=1,
        requests_lost=0,
        events_lost=max(0, 1 - len(delivered)),
        events_duplicated=max(0, len(delivered) - 1),
        detail=(
            "capacity process SIGKILLed by the relay's fault hook after committing a "
            f"{KILLED_EVENT} event, before publishing it; restarted: "
            f"{len(delivered)} delivery on the stream"
        ),
    )
    assert len(delivered) == 1, [(e.type, e.aggregate_id) for e in events]
    assert all(published is not None for _, _, published in after), after
    assert len({e.id for e in events}) == len(events)  # nothing published twice

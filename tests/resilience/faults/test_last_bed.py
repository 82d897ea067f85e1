"""200 concurrent requests for the last bed: exactly one 201, the rest 409, ledger agrees."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlmodel import Session, select

from capacity.database import db
from capacity.ledger import ledger_counts
from capacity.main import service
from capacity.models import Hold, LedgerEntry, Pool
from services.app import create_app
from services.bus import InProcessBus
from services.settings import get_settings
from tests.conftest import running
from tests.resilience.faults.conftest import Actors, facility_with_pools
from tests.resilience.faults.record import record_fault
from tests.resilience.faults.servers import OwnPostgres

pytestmark = pytest.mark.resilience

RACERS = 200


async def _race(actors: Actors, label: str) -> None:
    bus = InProcessBus()
    get_settings().auto_migrate = True
    app = create_app([service()], bus=bus)
    async with running(app) as http:
        _, [pool] = await facility_with_pools(http, actors, 3)
        r = await http.post(
            f"/api/v1/pools/{pool['id']}/ledger",
            json={"kind": "admit", "beds": 2, "reason": "dos ingresos"},
            headers=actors.coordinator(),
        )
        assert r.status_code == 201 and r.json()["pool"]["available"] == 1, r.text
        body = {"allocations": [{"pool_id": pool["id"], "beds": 1}]}
        headers = [actors.prosecutor(sub=f"fiscal-{i}") for i in range(RACERS)]
        answers = await asyncio.gather(
            *(http.post("/api/v1/holds", json=body, headers=h) for h in headers)
        )
        await app.state.runtime.relays["capacity"].drain()
        granted = [a.json()["id"] for a in answers if a.status_code == 201]
        codes = sorted(a.status_code for a in answers)
        with Session(db.engine) as s:
            row = s.get(Pool, pool["id"])
            assert row is not None
            holds = s.exec(select(Hold)).all()
            hold_entries = s.exec(select(LedgerEntry).where(LedgerEntry.kind == "hold")).all()
            counts = ledger_counts(s, pool_id=pool["id"])
        hold_events = [
            e
            for e in await _history(bus)
            if e.type == "capacity.hold.created" and e.aggregate_id in granted
        ]
    stored = {h.id for h in holds}
    record_fault(
        f"last_bed_race_{label}",
        injected=RACERS,
        requests_lost=len([h for h in granted if h not in stored]),
        double_bookings=max(0, len(granted) - 1) + max(0, row.held - 1),
        events_lost=max(0, len(granted) - len(hold_events)),
        events_duplicated=max(0, len(hold_events) - len(granted)),
        detail=(
            f"{RACERS} holds at once for 1 free bed ({label}): "
            f"{codes.count(201)}×201, {codes.count(409)}×409, "
            f"{len(codes) - codes.count(201) - codes.count(409)} other"
        ),
    )
    assert codes == [201] + [409] * (RACERS - 1), codes
    assert {a.json()["error"] for a in answers if a.status_code == 409} == {"beds_unavailable"}
    assert (row.occupied, row.held, row.total) == (2, 1, 3)
    assert [h.id for h in holds] == granted and holds[0].status == "active"
    assert [(e.beds, e.hold_id) for e in hold_entries] == [(1, granted[0])]
    assert (counts.total, counts.occupied, counts.held, counts.available) == (3, 2, 1, 0)
    assert len(hold_events) == 1


async def _history(bus: InProcessBus) -> list[Any]:
    return bus.retained()


async def test_two_hundred_racers_for_the_last_bed_sqlite(tmp_path, actors):
    db.configure(f"sqlite:///{tmp_path}/capacity.db")
    try:
        await _race(actors, "sqlite")
    finally:
        db.dispose()


async def test_two_hundred_racers_for_the_last_bed_postgres(own_pg: OwnPostgres, actors):
    url = own_pg.create_database(f"race_{uuid.uuid4().hex[:8]}")
    db.configure(url, pool_size=60, max_overflow=20)
    try:
        assert db.engine.dialect.name == "postgresql"
        await _race(actors, "postgres")
    finally:
        db.dispose()

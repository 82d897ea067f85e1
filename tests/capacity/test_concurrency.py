"""Under any concurrency exactly the available beds are handed out (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import Session, select

from capacity.database import db
from capacity.ledger import ledger_counts
from capacity.models import Hold, LedgerEntry, Pool
from tests.capacity.conftest import Cap, capacity_on_postgres

RACERS = 50


async def _race_for_the_last_bed(cap: Cap) -> None:
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    r = await cap.client.post(
        f"/api/v1/pools/{pool['id']}/ledger",
        json={"kind": "admit", "beds": 2, "reason": "dos ingresos"},
        headers=cap.coordinator(),
    )
    assert r.status_code == 201 and r.json()["pool"]["available"] == 1
    headers = [cap.headers("prosecutor", sub=f"fiscal-{i}") for i in range(RACERS)]
    body = {"allocations": [{"pool_id": pool["id"], "beds": 1}]}
    answers = await asyncio.gather(
        *(cap.client.post("/api/v1/holds", json=body, headers=h) for h in headers)
    )
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] + [409] * (RACERS - 1), codes
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"beds_unavailable"}
    with Session(db.engine) as s:
        row = s.get(Pool, pool["id"])
        assert row is not None and (row.occupied, row.held, row.total) == (2, 1, 3)
        holds = s.exec(select(Hold)).all()
        assert len(holds) == 1 and holds[0].status == "active"
        entries = s.exec(select(LedgerEntry).where(LedgerEntry.kind == "hold")).all()
        assert [(e.beds, e.hold_id) for e in entries] == [(1, holds[0].id)]
        counts = ledger_counts(s, pool_id=pool["id"])
        assert (counts.total, counts.occupied, counts.held, counts.available) == (3, 2, 1, 0)
    # The search read model saw the race's outcome: nothing left to offer.
    answer = await cap.search([{"sex": "F", "age": 30, "role": "victim"}], state="09")
    assert answer["results"] == [] and answer["unmet"]["code"] == "no_beds_now"


async def test_fifty_concurrent_holds_for_the_last_bed_sqlite(cap):
    assert db.url.startswith("sqlite")
    await _race_for_the_last_bed(cap)


@pytest.mark.postgres
async def test_fifty_concurrent_holds_for_the_last_bed_postgres(
    pg_url, test_verifier, auth_headers
):
    async with capacity_on_postgres(pg_url, auth_headers, pool_size=RACERS) as cap:
        await _race_for_the_last_bed(cap)

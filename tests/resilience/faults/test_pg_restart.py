"""PostgreSQL crashes and comes back in the middle of a stream of writes.

A capacity service process (``canaliza serve capacity``) runs on our own PostgreSQL; writers keep
posting ledger entries and holds while the database is stopped (``immediate``: like a
crash) and started again. Every answer must be a 201 or a clean 503 in the error model
(never a 500, never a hang), the service must recover by itself, and every acknowledged
write must be in the database afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from canaliza.cluster import free_port
from capacity.database import db
from capacity.ledger import ledger_counts
from capacity.models import Pool
from tests.resilience.faults.conftest import Actors, facility_with_pools, is_error_body
from tests.resilience.faults.process import CapacityProcess, capacity_env, jwks_server
from tests.resilience.faults.record import record_fault
from tests.resilience.faults.servers import OwnPostgres

pytestmark = pytest.mark.resilience

WRITERS = 6
BEFORE_OUTAGE = 30  # acknowledged writes before the crash
OUTAGE_SECONDS = 3.0
AFTER_RECOVERY = 5  # acknowledged writes per writer once the database is back
MAX_PER_WRITER = 2000  # a bound, whatever happens


async def test_postgres_crash_during_writes_is_clean_and_loses_nothing(
    tmp_path, own_pg: OwnPostgres, actors: Actors, signing_key: Any, test_verifier: Any
) -> None:
    url = own_pg.create_database(f"restart_{uuid.uuid4().hex[:8]}")
    acked_entries: list[int] = []
    acked_holds: list[str] = []
    statuses: Counter[int] = Counter()
    bad_bodies: list[str] = []
    transport_errors: list[str] = []
    phase = {"name": "before"}
    after_recovery: Counter[int] = Counter()
    outage_answers: Counter[int] = Counter()
    enough_before = asyncio.Event()

    async def writer(i: int, http: httpx.AsyncClient, pool_id: str) -> None:
        for n in range(MAX_PER_WRITER):
            if phase["name"] == "recovered" and after_recovery[i] >= AFTER_RECOVERY:
                return
            ledger = (n + i) % 2 == 0
            try:
                if ledger:
                    r = await http.post(
                        f"/api/v1/pools/{pool_id}/ledger",
                        json={"kind": "admit", "beds": 1, "reason": f"ingreso {i}-{n}"},
                        headers=coordinator,
                    )
                else:
                    r = await http.post(
                        "/api/v1/holds",
                        json={"allocations": [{"pool_id": pool_id, "beds": 1}]},
                        headers=prosecutor,
                    )
            except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
                transport_errors.append(f"{type(exc).__name__}: {exc}")
                continue
            statuses[r.status_code] += 1
            if phase["name"] == "down":
                outage_answers[r.status_code] += 1
            if r.status_code == 201:
                if ledger:
                    acked_entries.append(r.json()["entry"]["seq"])
                else:
                    acked_holds.append(r.json()["id"])
                if phase["name"] == "recovered":
                    after_recovery[i] += 1
                if len(acked_entries) + len(acked_holds) >= BEFORE_OUTAGE:
                    enough_before.set()
            else:
                if not is_error_body(r):
                    bad_bodies.append(f"{r.status_code} {r.text[:200]}")
                await asyncio.sleep(0.05)

    async def crash_and_restart() -> None:
        await enough_before.wait()
        await asyncio.to_thread(own_pg.stop, "immediate")
        phase["name"] = "down"
        await asyncio.sleep(OUTAGE_SECONDS)
        await asyncio.to_thread(own_pg.start)
        phase["name"] = "recovered"

    coordinator = actors.coordinator()
    prosecutor = actors.prosecutor()
    with jwks_server({"keys": [signing_key.as_dict(private=False)]}) as jwks_url:
        env = capacity_env(
            tmp_path,
            jwks_url,
            test_verifier.issuer,
            CANALIZA_DATABASE_URL=url,
            # writers of one institution hold beds all through the crash: no quota in the way
            CANALIZA_HOLD_QUOTA_BEDS="1000000",
        )
        proc = CapacityProcess(env, free_port(), tmp_path / "capacity.log")
        proc.start()
        try:
            await asyncio.to_thread(proc.wait_ready)
            async with httpx.AsyncClient(base_url=proc.url, timeout=60) as http:
                _, [pool] = await facility_with_pools(http, actors, 10_000)
                await asyncio.gather(
                    crash_and_restart(), *(writer(i, http, pool["id"]) for i in range(WRITERS))
                )
                # The same process, never restarted, answers normally again.
                r = await http.get(f"/api/v1/pools/{pool['id']}", headers=actors.admin())
                assert r.status_code == 200, r.text
                pool_after: dict[str, Any] = r.json()
                ready = await http.get("/readyz")
            survived = proc.process is not None and proc.process.poll() is None
        finally:
            proc.stop()

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            entries = set(conn.execute(sa.text("SELECT seq FROM capacity.ledger_entry")).scalars())
            holds = set(conn.execute(sa.text("SELECT id FROM capacity.hold")).scalars())
    finally:
        engine.dispose()
    db.configure(url)
    try:
        with Session(db.engine) as s:
            row = s.get(Pool, pool["id"])
            assert row is not None
            counts = ledger_counts(s, pool_id=pool["id"])
            stored = (row.total, row.occupied, row.held)
    finally:
        db.dispose()
    lost = [e for e in acked_entries if e not in entries] + [
        h for h in acked_holds if h not in holds
    ]
    record_fault(
        "postgres_crash_during_writes",
        injected=1,
        requests_lost=len(lost),
        detail=(
            f"PostgreSQL stopped (immediate) for {OUTAGE_SECONDS:.0f} s under {WRITERS} writers: "
            f"{sum(statuses.values())} answers {dict(sorted(statuses.items()))}, "
            f"{len(acked_entries) + len(acked_holds)} acknowledged, all present afterwards"
            if not lost
            else f"{len(lost)} acknowledged writes missing"
        ),
        answers=dict(sorted(statuses.items())),
        transport_errors=len(transport_errors),
    )
    assert not lost
    assert not transport_errors, transport_errors[:5]
    assert set(statuses) <= {201, 503}, statuses
    assert not bad_bodies, bad_bodies[:5]
    assert outage_answers[503] > 0, "the outage never reached a request"
    assert sum(after_recovery.values()) >= WRITERS * AFTER_RECOVERY
    assert ready.status_code == 200 and survived
    # The ledger replays to the stored counts, and those match what the API answered.
    assert (counts.total, counts.occupied, counts.held) == stored
    assert (pool_after["total"], pool_after["occupied"], pool_after["held"]) == stored
    # The counts still replay from the ledger: every acknowledged hold and admission is there.
    assert pool_after["held"] >= len(acked_holds)
    assert pool_after["occupied"] >= len(acked_entries)

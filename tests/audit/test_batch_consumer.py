"""Events waiting together are recorded in one transaction (issue 18, 200 users embedded): the
trail and the roster come out exactly as when each event is recorded on its own.

The oracle is the one-by-one path (``consume``); the same random sequence of facility, pool
and stay events is then fed to ``consume_batch`` in random slices, on a fresh copy of the
database, and every trail row, checkpoint and roster row must be equal.
"""

from __future__ import annotations

import asyncio
import os
import random
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import col

import audit.main as audit_main
from audit.database import db
from audit.main import consume, consume_batch
from audit.models import AuditEntry, Checkpoint, RosterFacility, RosterPool, RosterStay
from services.bus import InProcessBus
from services.clock import utcnow
from services.events import Event
from tests.conftest import database_copy

EXAMPLES = int(os.environ.get("CANALIZA_INVARIANT_EXAMPLES", "12"))
FACILITIES = ["f-0", "f-1", "f-2"]


def _events(seed: int, count: int) -> list[Event]:
    """A reproducible mix: facility changes, pool changes (some of held beds only, which the
    roster does not count), admissions, extensions and discharges, history imports, and a
    few repeats."""
    rnd = random.Random(seed)
    versions: dict[str, int] = {}
    out: list[Event] = []
    start = utcnow() - timedelta(days=10)
    for i in range(count):
        fid = rnd.choice(FACILITIES)
        kind = rnd.choice(
            ["facility", "pool", "pool", "held", "admit", "extend", "discharge", "history"]
        )
        at = start + timedelta(minutes=i)
        if kind == "facility":
            versions[fid] = versions.get(fid, 0) + 1
            payload: dict[str, Any] = {
                "facility_id": fid, "name": f"Casa {fid}", "kind": "refugio", "state": "09",
                "municipality": "Tlalpan", "operator_institution_id": "ngo",
                "status": rnd.choice(["active", "suspended", "closed"]),
                "max_stay_days": rnd.choice([None, 30, 90]),
            }  # fmt: skip
            out.append(_event("capacity.facility.updated", fid, payload, versions[fid], at))
        elif kind in ("pool", "held"):
            pid = f"{fid}-p{rnd.randrange(2)}"
            versions[pid] = versions.get(pid, 0) + 1
            occupied = rnd.randrange(4) if kind == "pool" else 1
            payload = {
                "pool_id": pid, "facility_id": fid, "total": 4, "occupied": occupied,
                "held": rnd.randrange(3), "facility_name": f"Casa {fid}",
                "last_confirmed_at": at.isoformat() if kind == "pool" else None,
            }  # fmt: skip
            out.append(_event("capacity.pool.changed", pid, payload, versions[pid], at))
        elif kind == "history":  # a bulk history import: stays folded without a refresh
            rows = [
                {"referral_id": f"h-{i}-{n}", "facility_id": rnd.choice(FACILITIES),
                 "status": rnd.choice(["admitted", "discharged"]),
                 "created_on": (at - timedelta(days=rnd.randrange(200))).date().isoformat()}
                for n in range(rnd.randrange(1, 6))
            ]  # fmt: skip
            out.append(_event("referral.history.imported", f"b-{i}", {"referrals": rows}, 1, at))
        else:
            rid = f"{fid}-r{rnd.randrange(3)}"
            etype = {"admit": "referral.referral.admit", "extend": "referral.stay.extended",
                     "discharge": "referral.referral.discharge"}[kind]  # fmt: skip
            payload = {"referral_id": rid, "facility_id": fid, "days": rnd.randrange(1, 20)}
            out.append(_event(etype, rid, payload, 1, at))
        if rnd.random() < 0.1:
            out.append(out[rnd.randrange(len(out))])  # delivered twice: recorded once
    return out


def _event(etype: str, aggregate_id: str, payload: dict[str, Any], version: int, at: Any) -> Event:
    return Event(
        type=etype,
        aggregate_type=etype.split(".")[1],
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=at,
        payload=payload,
    )


def _snapshot() -> dict[str, Any]:
    def rows(model: Any, key: str, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        with db.unit_of_work(write=False) as session:
            found = session.execute(select(model).order_by(getattr(model, key))).scalars()
            return [{k: v for k, v in r.model_dump().items() if k not in skip} for r in found]

    return {
        "trail": rows(AuditEntry, "position"),
        "checkpoints": [c["position"] for c in rows(Checkpoint, "position")],
        "facilities": rows(RosterFacility, "facility_id"),
        "pools": rows(RosterPool, "pool_id"),
        "stays": rows(RosterStay, "referral_id"),
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 230), cuts=st.integers(0, 10_000))
def test_a_batch_records_what_one_by_one_records(audit_template, tmp_path_factory, seed, count,
                                                 cuts):  # fmt: skip
    events = _events(seed, count)
    with database_copy(audit_template, tmp_path_factory.mktemp("one"), db):
        for event in events:
            consume(event)
        one_by_one = _snapshot()
    rnd = random.Random(cuts)
    fallbacks: list[Event] = []
    with (
        database_copy(audit_template, tmp_path_factory.mktemp("batch"), db),
        mock.patch.object(audit_main, "consume", fallbacks.append),  # must not be needed
    ):
        i = 0
        while i < len(events):
            size = rnd.choice([1, 2, 7, 50, 200])
            consume_batch(events[i : i + size])
            i += size
        batched = _snapshot()
    assert fallbacks == []
    # The trail keeps when each entry was received, never in the canonical (hashed) body.
    assert batched == one_by_one
    assert len(one_by_one["trail"]) == len({e.id for e in events})


def test_a_failing_batch_is_recorded_one_by_one(audit_db, monkeypatch):
    events = _events(7, 20)

    def broken(session: Any, batch: list[Event]) -> int:
        raise RuntimeError("the batch's transaction failed")

    monkeypatch.setattr(audit_main, "record_events", broken)
    consume_batch(events)
    with db.unit_of_work(write=False) as session:
        recorded = list(session.execute(select(col(AuditEntry.event_id))).scalars())
    assert sorted(recorded) == sorted({e.id for e in events})


def test_the_bus_hands_over_the_waiting_events_together_in_order():
    async def scenario() -> tuple[list[list[int]], list[int]]:
        bus = InProcessBus()
        batches: list[list[int]] = []
        singles: list[int] = []
        gate = asyncio.Event()

        async def on_batch(events: list[Event]) -> None:
            batches.append([e.aggregate_version for e in events])
            await gate.wait()

        async def on_one(event: Event) -> None:
            singles.append(event.aggregate_version)
            if event.aggregate_version == 2:
                raise RuntimeError("one handler failure does not stop the subscription")

        sub_batch = await bus.subscribe_batches("canaliza.>", on_batch, max_batch=3)
        sub_one = await bus.subscribe("canaliza.>", on_one)
        for v in range(1, 9):
            await bus.publish(_event("capacity.pool.changed", "p", {}, v, utcnow()))
        await asyncio.sleep(0)
        gate.set()
        for _ in range(100):
            if sum(map(len, batches)) == 8 and len(singles) == 8:
                break
            await asyncio.sleep(0.01)
        await sub_batch.close()
        await sub_one.close()
        return batches, singles

    batches, singles = asyncio.run(scenario())
    assert [v for batch in batches for v in batch] == list(range(1, 9))
    assert all(1 <= len(batch) <= 3 for batch in batches)
    assert len(batches) < 8  # the events that waited came together
    assert singles == list(range(1, 9))


def _pool(version: int, *, occupied: int, held: int) -> Event:
    payload = {"pool_id": "f-0-p0", "facility_id": "f-0", "total": 4, "occupied": occupied,
               "held": held}  # fmt: skip
    return _event("capacity.pool.changed", "f-0-p0", payload, version, utcnow())


@pytest.mark.parametrize("size", [1, 5])
def test_a_held_bed_change_does_not_recompute_the_roster(audit_db, size, monkeypatch):
    """A pool event that changes only held beds leaves the roster's kept columns alone: no
    recomputation (the refresh is what costs), and the same lines."""
    import audit.projection as projection
    import audit.roster_state as roster_state

    consume(_pool(1, occupied=1, held=0))
    calls: list[Any] = []
    real = roster_state.refresh

    def counted(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        real(*args, **kwargs)

    monkeypatch.setattr(projection, "refresh", counted)
    consume_batch([_pool(v, occupied=1, held=v % 3) for v in range(2, 2 + size)])
    assert calls == []
    consume(_pool(10, occupied=3, held=0))
    assert len(calls) == 1
    with db.unit_of_work(write=False) as session:
        fac = session.get(RosterFacility, "f-0")
        assert fac is not None and fac.occupied == 3 and fac.beds == 4

"""Holds: all or nothing, idempotency, release, expiry with a frozen clock, consumption."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, col, select

from canaliza.demo import FGR
from capacity.database import db, outbox
from capacity.holds import expire_holds
from capacity.ledger import ledger_counts
from capacity.models import Hold, LedgerEntry, Pool
from services.clock import clock, utcnow


async def _pool_state(cap, pool_id):
    return (await cap.client.get(f"/api/v1/pools/{pool_id}", headers=cap.admin())).json()


def _event_types() -> list[str]:
    with db.engine.connect() as conn:
        return [
            r.type for r in conn.execute(select(outbox.table.c.type).order_by(outbox.table.c.seq))
        ]


async def test_hold_is_all_or_nothing_across_two_pools(cap):
    fac = await cap.facility()
    a = await cap.pool(fac["id"], total=2)
    b = await cap.pool(fac["id"], name="B", total=1)
    r = await cap.hold([{"pool_id": a["id"], "beds": 2}, {"pool_id": b["id"], "beds": 2}])
    assert r.status_code == 409 and r.json()["error"] == "beds_unavailable"
    assert r.json()["pool_id"] == b["id"]
    assert (await _pool_state(cap, a["id"]))["held"] == 0  # nothing half-done
    with Session(db.engine) as s:
        assert s.exec(select(Hold)).all() == []
    r = await cap.hold([{"pool_id": a["id"], "beds": 2}, {"pool_id": b["id"], "beds": 1}])
    assert r.status_code == 201, r.text
    hold = r.json()
    assert hold["status"] == "active" and hold["facility_id"] == fac["id"]
    assert sorted(x["beds"] for x in hold["allocations"]) == [1, 2]
    state = await _pool_state(cap, a["id"])
    assert (state["held"], state["available"], state["version"]) == (2, 0, 2)
    assert "capacity.hold.created" in _event_types()


async def test_hold_across_facilities_or_on_closed_facility_is_refused(cap):
    fac = await cap.facility()
    other = await cap.facility(name="Otra")
    a = await cap.pool(fac["id"])
    b = await cap.pool(other["id"])
    r = await cap.hold([{"pool_id": a["id"], "beds": 1}, {"pool_id": b["id"], "beds": 1}])
    assert r.status_code == 422 and "misma instalación" in r.json()["detail"]
    await cap.client.patch(
        f"/api/v1/facilities/{other['id']}",
        json={"status": "closed", "reason": "cierre definitivo"},
        headers=cap.admin(),
    )
    r = await cap.hold([{"pool_id": b["id"], "beds": 1}])
    assert r.status_code == 409 and r.json()["error"] == "facility_not_active"
    assert "cerrada" in r.json()["detail"]
    r = await cap.hold([{"pool_id": a["id"], "beds": 0}])
    assert r.status_code == 422
    r = await cap.hold([{"pool_id": "nope", "beds": 1}])
    assert r.status_code == 404
    r = await cap.client.post(
        "/api/v1/holds",
        json={"allocations": [{"pool_id": a["id"], "beds": 1}]},
        headers=cap.headers("institution_admin"),
    )
    assert r.status_code == 403


async def test_idempotency_key_returns_the_same_hold(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    body = [{"pool_id": pool["id"], "beds": 1}]
    key = {"Idempotency-Key": "ref-123"}
    r1 = await cap.hold(body, headers=key)
    r2 = await cap.hold(body, headers=key)
    assert r1.status_code == r2.status_code == 201
    assert r1.json()["id"] == r2.json()["id"]
    assert r2.headers["idempotent-replayed"] == "true"
    assert (await _pool_state(cap, pool["id"]))["held"] == 1
    r3 = await cap.hold([{"pool_id": pool["id"], "beds": 2}], headers=key)
    assert r3.status_code == 422 and r3.json()["error"] == "idempotency_key_reused"
    r4 = await cap.hold(body, headers={"Idempotency-Key": "ref-456"})
    assert r4.status_code == 201 and r4.json()["id"] != r1.json()["id"]


async def test_release_is_idempotent_and_permissions_apply(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=2)
    hold = (await cap.hold([{"pool_id": pool["id"], "beds": 2}])).json()
    url = f"/api/v1/holds/{hold['id']}"
    r = await cap.client.get(url, headers=cap.headers("prosecutor", institution_id="other"))
    assert r.status_code == 403
    r = await cap.client.get(url, headers=cap.headers("dif_officer", institution_id=FGR.id))
    assert r.status_code == 200
    for _ in range(2):
        r = await cap.client.delete(url, headers=cap.prosecutor())
        assert r.status_code == 200 and r.json()["status"] == "released"
    assert (await _pool_state(cap, pool["id"]))["available"] == 2
    assert _event_types().count("capacity.hold.released") == 1
    r = await cap.client.post(url + "/consume", headers=cap.service())
    assert r.status_code == 409 and r.json()["error"] == "hold_not_active"


async def test_expired_holds_release_themselves(cap):
    clock.freeze()
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=2)
    short = (await cap.hold([{"pool_id": pool["id"], "beds": 1}], ttl_minutes=5)).json()
    long = (await cap.hold([{"pool_id": pool["id"], "beds": 1}])).json()  # default TTL
    assert (await _pool_state(cap, pool["id"]))["available"] == 0
    with db.unit_of_work() as s:
        assert expire_holds(s, utcnow() + timedelta(minutes=4)) == []
    clock.advance(timedelta(minutes=6))
    with db.unit_of_work() as s:
        assert expire_holds(s, utcnow()) == [short["id"]]
    got = (await cap.client.get(f"/api/v1/holds/{short['id']}", headers=cap.prosecutor())).json()
    assert got["status"] == "expired"
    assert (await _pool_state(cap, pool["id"]))["available"] == 1
    assert "capacity.hold.expired" in _event_types()
    clock.advance(timedelta(minutes=200))
    r = await cap.client.post(f"/api/v1/holds/{long['id']}/consume", headers=cap.service())
    assert r.status_code == 409 and "venció" in r.json()["detail"]
    with db.unit_of_work() as s:
        assert expire_holds(s, utcnow()) == [long["id"]]
        assert ledger_counts(s, pool_id=pool["id"]).available == 2


async def test_consume_turns_held_beds_into_occupancy(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=3)
    hold = (await cap.hold([{"pool_id": pool["id"], "beds": 2}])).json()
    url = f"/api/v1/holds/{hold['id']}/consume"
    assert (await cap.client.post(url, headers=cap.prosecutor())).status_code == 403
    r = await cap.client.post(url, headers=cap.coordinator())
    assert r.status_code == 200 and r.json()["status"] == "consumed"
    state = await _pool_state(cap, pool["id"])
    assert (state["occupied"], state["held"], state["available"]) == (2, 0, 1)
    with Session(db.engine) as s:
        kinds = [e.kind for e in s.exec(select(LedgerEntry).order_by(col(LedgerEntry.seq))).all()]
        assert kinds == ["adjust", "hold", "release", "admit"]
        row = s.get(Pool, pool["id"])
        assert row is not None
        counts = ledger_counts(s, pool_id=pool["id"])
        assert (counts.occupied, counts.held, counts.total) == (row.occupied, row.held, row.total)
    assert "capacity.hold.consumed" in _event_types()
    r = await cap.client.delete(f"/api/v1/holds/{hold['id']}", headers=cap.service())
    assert r.status_code == 200 and r.json()["status"] == "consumed"


async def test_closing_a_facility_releases_its_holds(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=2)
    hold = (await cap.hold([{"pool_id": pool["id"], "beds": 2}])).json()
    r = await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "closed", "reason": "cierre por la autoridad"},
        headers=cap.admin(),
    )
    assert r.status_code == 200
    got = (await cap.client.get(f"/api/v1/holds/{hold['id']}", headers=cap.prosecutor())).json()
    assert got["status"] == "released"
    state = await _pool_state(cap, pool["id"])
    assert (state["held"], state["available"]) == (0, 2)
    with Session(db.engine) as s:
        counts = ledger_counts(s, pool_id=pool["id"])
        assert (counts.held, counts.available) == (0, 2)


async def test_concurrent_requests_with_one_idempotency_key_make_one_hold(cap):
    import asyncio

    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=5)
    body = [{"pool_id": pool["id"], "beds": 1}]
    answers = await asyncio.gather(
        *(cap.hold(body, headers={"Idempotency-Key": "same"}) for _ in range(10))
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert (await _pool_state(cap, pool["id"]))["held"] == 1

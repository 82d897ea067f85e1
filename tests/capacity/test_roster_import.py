"""The roster's bulk path: what the one-by-one API would leave, in one transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col

from canaliza.demo import CASA_MERCEDES, FGR
from capacity.database import db, outbox
from capacity.events import roster_imported
from capacity.ledger import ledger_mismatches
from capacity.models import Facility, FacilityStatusChange, Pool

PATH = "/api/v1/facilities/import"


def _pool(key: str, **over) -> dict:
    body = {
        "name": f"Mujeres con hijas e hijos {key}",
        "sexes": ["F"],
        "min_age": 18,
        "max_age": 99,
        "total": 10,
        "accepts_children": True,
        "max_child_age": 12,
        "max_children": 3,
    }
    occupied = over.pop("occupied", 6)
    oos = over.pop("out_of_service", 1)
    return {"key": key, "pool": {**body, **over}, "occupied": occupied, "out_of_service": oos}


def _facility(key: str, status: str = "active", pools: list | None = None, **over) -> dict:
    body = {
        "name": f"Refugio Importado {key}",
        "kind": "refugio",
        "operator_institution_id": CASA_MERCEDES.id,
        "state": "09",
        "municipality": "Cuauhtémoc",
        "address": "Calle Ficticia 12, Col. Ejemplo Centro, Cuauhtémoc",
        **over,
    }
    return {
        "key": key,
        "facility": body,
        "status": status,
        "status_reason": None if status == "active" else "Cierre por falta de financiamiento",
        "pools": pools if pools is not None else [_pool(f"{key}-p1"), _pool(f"{key}-p2")],
    }


async def test_imported_roster_is_searchable_and_its_ledger_replays(cap):
    batch = [
        _facility("a"),
        _facility("b", pools=[_pool("b-p1", occupied=0, out_of_service=0, total=0)]),
        _facility("c", status="closed", pools=[_pool("c-p1", occupied=0)]),
        _facility("d", status="registered", pools=[]),
    ]
    resp = await cap.client.post(PATH, json={"facilities": batch}, headers=cap.service())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["created_facilities"], body["created_pools"]) == (4, 4)
    assert set(body["facilities"]) == {"a", "b", "c", "d"}
    assert set(body["pools"]) == {"a-p1", "a-p2", "b-p1", "c-p1"}
    # adjust + admit + out_of_service for a's two pools; c's: adjust + out_of_service
    assert body["ledger_entries"] == 3 + 3 + 0 + 2

    pool = await cap.client.get(f"/api/v1/pools/{body['pools']['a-p1']}", headers=cap.admin())
    assert pool.status_code == 200
    counts = pool.json()
    assert (counts["total"], counts["occupied"], counts["out_of_service"]) == (10, 6, 1)
    assert counts["available"] == 3 and counts["version"] == 3

    # search sees the new active facility at once (one revision for the batch)
    found = await cap.search(
        [
            {"sex": "F", "age": 30, "role": "victim"},
            {"sex": "M", "age": 5, "role": "accompanying_child"},
        ],
        state="09",
    )
    offered = {r["facility"]["id"] for r in found["results"]}
    assert body["facilities"]["a"] in offered
    assert body["facilities"]["c"] not in offered  # closed
    assert body["facilities"]["d"] not in offered  # registered, not yet active

    with db.new_session(write=False) as session:
        assert ledger_mismatches(session) == []
        closed = session.get(Facility, body["facilities"]["c"])
        assert closed is not None and closed.status == "closed"
        steps = [
            c.to_status
            for c in session.execute(
                select(FacilityStatusChange)
                .where(col(FacilityStatusChange.facility_id) == closed.id)
                .order_by(col(FacilityStatusChange.at), col(FacilityStatusChange.id))
            ).scalars()
        ]
        assert sorted(steps) == sorted(["registered", "active", "closed"])
        for p in session.execute(select(Pool)).scalars():
            assert p.total - p.occupied - p.held - p.out_of_service >= 0

    # idempotent: the same batch again writes nothing and answers the same ids
    again = await cap.client.post(PATH, json={"facilities": batch}, headers=cap.service())
    assert again.status_code == 200, again.text
    assert again.json()["created_facilities"] == 0
    assert again.json()["already_present"] == 4
    assert again.json()["facilities"] == body["facilities"]
    assert again.json()["pools"] == body["pools"]


async def test_only_a_service_imports_and_bad_batches_write_nothing(cap):
    batch = [_facility("x")]
    for headers in (cap.admin(), cap.prosecutor()):
        resp = await cap.client.post(PATH, json={"facilities": batch}, headers=headers)
        assert resp.status_code == 403, resp.text
        assert set(resp.json()) >= {"error", "detail"}
    # more beds used than exist, occupancy in a closed facility, children without a number
    bad = [
        [_facility("y", pools=[_pool("y-p1", occupied=9, out_of_service=2)])],
        [_facility("z", status="closed")],
        [_facility("w", pools=[_pool("w-p1", max_children=0)])],
        [_facility("v"), _facility("v", operator_institution_id=FGR.id)],
    ]
    for facilities in bad:
        resp = await cap.client.post(PATH, json={"facilities": facilities}, headers=cap.service())
        assert resp.status_code == 422, resp.text
        assert set(resp.json()) >= {"error", "detail"}
    with db.new_session(write=False) as session:
        assert session.execute(select(Facility)).first() is None


async def test_the_batch_event_describes_the_stored_rows(cap):
    """The event is built from the batch's rows (no ORM object per row): it says what the
    same builders say of the facilities and pools read back from the database."""
    batch = [
        _facility("e", services=["legal", "mental_health"], max_stay_days=90),
        _facility("f", status="suspended", pools=[_pool("f-p1", occupied=0, wheelchair_accessible=True)]),
        _facility("g", status="registered", pools=[]),
    ]  # fmt: skip
    resp = await cap.client.post(PATH, json={"facilities": batch}, headers=cap.service())
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    with db.new_session(write=False) as session:
        body = session.execute(
            select(outbox.table.c.body).where(outbox.table.c.event_id == answer["event_id"])
        ).scalar_one()
        facilities = {
            f.id: f
            for f in session.execute(
                select(Facility).where(col(Facility.id).in_(answer["facilities"].values()))
            ).scalars()
        }
        pools = list(
            session.execute(
                select(Pool).where(col(Pool.id).in_(answer["pools"].values()))
            ).scalars()
        )
    order = list(answer["facilities"].values())
    stored = roster_imported(
        [facilities[fid] for fid in order],
        [(p, facilities[p.facility_id]) for p in sorted(pools, key=lambda p: p.name)],
    ).model_dump(mode="json")
    sent = body["payload"]
    assert sent["facilities"] == stored["facilities"]
    assert sorted(sent["pools"], key=lambda p: p["pool_id"]) == sorted(
        stored["pools"], key=lambda p: p["pool_id"]
    )
    assert [f["status"] for f in sent["facilities"]] == ["active", "suspended", "registered"]

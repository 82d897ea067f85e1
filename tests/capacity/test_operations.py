"""Rescue operations: plan (writes nothing), hold (all or nothing per group, never
over-booked), release, bad input, and two operations racing for the last beds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import Session, col, select

from capacity.database import db
from capacity.ledger import ledger_mismatches
from capacity.models import Hold, Operation, Pool, UnmetRequest
from tests.capacity.conftest import Cap, capacity_on_postgres

WOMAN = {"sex": "F", "age": 30, "role": "victim"}
MAN = {"sex": "M", "age": 35, "role": "victim"}
CHILD = {"sex": "F", "age": 5, "role": "accompanying_child"}


def _indexes(answer: dict[str, Any]) -> list[int]:
    whole = [a["group"] for a in answer["assignments"] if not a["split"]]
    split = sorted({a["group"] for a in answer["assignments"] if a["split"]})
    return sorted(whole + split + [u["group"] for u in answer["unplaced"]])


async def _plan(cap: Cap, groups: list[dict[str, Any]], state: str = "09") -> dict[str, Any]:
    r = await cap.client.post(
        "/api/v1/operations/plan", json={"state": state, "groups": groups}, headers=cap.prosecutor()
    )
    assert r.status_code == 200, r.text
    return r.json()


def _held_beds() -> int:
    with Session(db.engine) as s:
        return sum(p.held for p in s.exec(select(Pool)).all())


async def test_plan_places_every_group_once_prefers_the_state_and_writes_nothing(cap):
    near = await cap.facility(name="Cerca", state="09")
    neighbour = await cap.facility(name="Vecino", state="15")
    far = await cap.facility(name="Lejos", state="02")
    a = await cap.pool(near["id"], total=3)
    await cap.pool(neighbour["id"], total=3)
    await cap.pool(far["id"], total=10)
    groups = [
        {"people": [WOMAN, CHILD]},
        {"people": [WOMAN]},
        {"people": [WOMAN, CHILD, CHILD]},
        {"people": [MAN]},  # nobody takes men
    ]
    answer = await _plan(cap, groups)
    assert _indexes(answer) == [0, 1, 2, 3]
    assert [u["group"] for u in answer["unplaced"]] == [3]
    assert answer["unplaced"][0]["reason"]["code"] == "no_eligible_pool"
    assert "hombres adultos" in answer["unplaced"][0]["reason"]["reason"]
    by_state: dict[str, int] = {}
    for assignment in answer["assignments"]:
        by_state[assignment["state"]] = by_state.get(assignment["state"], 0) + len(
            assignment["people"]
        )
    # 3 beds in CDMX filled first, then the neighbouring state (15), then the far one.
    assert by_state == {"09": 3, "15": 3}
    assert answer["summary"]["placed_people"] == 6
    assert any(x["pool_id"] == a["id"] for asg in answer["assignments"] for x in asg["allocations"])
    assert _held_beds() == 0
    with Session(db.engine) as s:
        assert s.exec(select(Hold)).all() == [] and s.exec(select(Operation)).all() == []


async def test_a_group_that_fits_nowhere_together_is_split_in_the_fewest_parts(cap):
    one = await cap.facility(name="Uno")
    two = await cap.facility(name="Dos")
    await cap.pool(one["id"], total=2)
    await cap.pool(two["id"], total=2)
    answer = await _plan(cap, [{"people": [WOMAN, CHILD, WOMAN, WOMAN]}])
    parts = answer["assignments"]
    assert len(parts) == 2 and all(p["split"] for p in parts)
    assert sorted(i for p in parts for i in p["people"]) == [0, 1, 2, 3]
    # The child stays with the first adult (her mother, listed first).
    assert any({0, 1} <= set(p["people"]) for p in parts)
    assert answer["unplaced"] == [] and _indexes(answer) == [0]


async def test_hold_release_and_unmet_demand_counted_once(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=4)
    body = {
        "name": "Operativo Zamora",
        "state": "09",
        "date": "2026-12-05",
        "ttl_minutes": 60,
        "groups": [{"people": [WOMAN, CHILD]}, {"people": [WOMAN]}, {"people": [MAN]}],
    }
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 201, r.text
    op = r.json()
    assert op["status"] == "active" and len(op["assignments"]) == 2
    assert op["operation_date"] == "2026-12-05"
    assert all(a["hold_id"] for a in op["assignments"])
    assert [u["group"] for u in op["unplaced"]] == [2]
    assert _held_beds() == 3
    with Session(db.engine) as s:
        holds = s.exec(select(Hold).where(col(Hold.operation_id) == op["id"])).all()
        assert len(holds) == 2 and all(h.status == "active" for h in holds)
        assert len(s.exec(select(UnmetRequest)).all()) == 1  # the man's group, once
    r = await cap.client.get(f"/api/v1/operations/{op['id']}", headers=cap.prosecutor())
    assert r.status_code == 200 and set(r.json()["holds"].values()) == {"active"}
    r = await cap.client.get(f"/api/v1/operations/{op['id']}", headers=cap.coordinator())
    assert r.status_code == 403
    # A hold a referral names stays the referral's when the operation is released.
    from capacity.operations import mark_referred

    with db.unit_of_work() as s:
        assert mark_referred(s, hold_id=op["assignments"][0]["hold_id"], referral_id="ref-1")
    r = await cap.client.delete(f"/api/v1/operations/{op['id']}", headers=cap.prosecutor())
    assert r.status_code == 200, r.text
    released = r.json()
    assert released["status"] == "released"
    assert released["holds"][op["assignments"][0]["hold_id"]] == "active"
    assert released["holds"][op["assignments"][1]["hold_id"]] == "released"
    state = (await cap.client.get(f"/api/v1/pools/{pool['id']}", headers=cap.admin())).json()
    assert state["held"] == 2
    again = await cap.client.delete(f"/api/v1/operations/{op['id']}", headers=cap.prosecutor())
    assert again.status_code == 200 and again.json()["holds"] == released["holds"]
    with Session(db.engine) as s:
        assert ledger_mismatches(s) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "09", "groups": [{"people": []}]}, "people"),
        ({"state": "09", "groups": [{"people": [WOMAN]}] * 2 + [{"people": [WOMAN] * 599}]}, "600"),
        (
            {"state": "09", "groups": [{"people": [WOMAN], "needs": {"telepathy": True}}]},
            "telepathy",
        ),
        (
            {"state": "09", "groups": [{"people": [{**WOMAN, "languages": ["klingon"]}]}]},
            "klingon",
        ),
        ({"state": "99", "groups": [{"people": [WOMAN]}]}, "99"),
    ],
)
async def test_bad_operations_are_refused_in_spanish_and_write_nothing(cap, body, field):
    fac = await cap.facility()
    await cap.pool(fac["id"], total=4)
    for path, extra in (("/api/v1/operations/plan", {}), ("/api/v1/operations", {"name": "X"})):
        r = await cap.client.post(path, json={**body, **extra}, headers=cap.prosecutor())
        assert r.status_code == 422, r.text
        answer = r.json()
        assert set(answer) >= {"error", "detail"} and field in r.text
    assert _held_beds() == 0
    with Session(db.engine) as s:
        assert s.exec(select(Operation)).all() == []


async def test_operation_ttl_and_roles(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], total=4)
    body = {"name": "Op", "state": "09", "groups": [{"people": [WOMAN]}], "ttl_minutes": 999}
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 422 and r.json()["error"] == "hold_ttl_too_long"
    body["ttl_minutes"] = 30
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.coordinator())
    assert r.status_code == 403
    assert _held_beds() == 0


async def _race_two_operations_for_the_last_beds(cap: Cap) -> None:
    fac = await cap.facility()
    other = await cap.facility(name="Otra", state="15")
    pools = [await cap.pool(fac["id"], total=3), await cap.pool(other["id"], total=2)]
    groups = [{"people": [WOMAN]} for _ in range(4)]
    bodies = [{"name": f"Operativo {i}", "state": "09", "groups": groups} for i in range(2)]
    answers = await asyncio.gather(
        *(
            cap.client.post(
                "/api/v1/operations",
                json=body,
                headers=cap.headers("prosecutor", institution_id=f"inst-{i}", sub=f"fiscal-{i}"),
            )
            for i, body in enumerate(bodies)
        )
    )
    assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
    placed = [sum(len(a["people"]) for a in r.json()["assignments"]) for r in answers]
    assert sum(placed) == 5  # exactly the five beds, never more
    for r in answers:
        op = r.json()
        assert _indexes(op) == [0, 1, 2, 3]
    with Session(db.engine) as s:
        for pool in pools:
            row = s.get(Pool, pool["id"])
            assert row is not None and row.held == row.total and row.occupied == 0
        assert ledger_mismatches(s) == []
        assert sum(1 for h in s.exec(select(Hold)).all() if h.status == "active") == 5


async def test_two_operations_racing_for_the_last_beds_sqlite(cap):
    assert db.url.startswith("sqlite")
    await _race_two_operations_for_the_last_beds(cap)


@pytest.mark.postgres
async def test_two_operations_racing_for_the_last_beds_postgres(
    pg_url, test_verifier, auth_headers
):
    async with capacity_on_postgres(pg_url, auth_headers, pool_size=8) as cap:
        await _race_two_operations_for_the_last_beds(cap)

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
    assert answer["optimal"] is True and answer["stopped"] is None  # nothing cut short
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


async def _race_two_operations_for_the_last_beds(cap: Cap, *, pinned: bool = False) -> None:
    fac = await cap.facility()
    other = await cap.facility(name="Otra", state="15")
    pools = [await cap.pool(fac["id"], total=3), await cap.pool(other["id"], total=2)]
    groups = [{"people": [WOMAN]} for _ in range(4)]
    bodies: list[dict[str, Any]] = [
        {"name": f"Operativo {i}", "state": "09", "groups": groups} for i in range(2)
    ]
    if pinned:  # both pin three groups to the same three beds
        for body in bodies:
            body["assignments"] = [_pin(fac["id"], pools[0]["id"], group=g) for g in range(3)]
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


async def test_two_operations_pinning_the_same_last_beds_sqlite(cap):
    await _race_two_operations_for_the_last_beds(cap, pinned=True)


@pytest.mark.postgres
async def test_two_operations_pinning_the_same_last_beds_postgres(
    pg_url, test_verifier, auth_headers
):
    async with capacity_on_postgres(pg_url, auth_headers, pool_size=8) as cap:
        await _race_two_operations_for_the_last_beds(cap, pinned=True)


# --- issue 16, last part: splits of children, pinned assignments, the time bound -------

BOY = {"sex": "M", "age": 7, "role": "accompanying_child"}


async def test_a_split_shares_the_children_among_the_adults(cap):
    # Two mothers with four children; no facility takes more than one adult with two
    # children (max_children 2, 3 beds), so the only split that places everyone gives
    # each mother two of the children.
    for name in ("Uno", "Dos"):
        fac = await cap.facility(name=name)
        await cap.pool(fac["id"], total=3, max_children=2)
    answer = await _plan(cap, [{"people": [WOMAN, WOMAN, CHILD, BOY, CHILD, BOY]}])
    parts = answer["assignments"]
    assert len(parts) == 2 and all(p["split"] for p in parts), answer
    assert sorted(i for p in parts for i in p["people"]) == [0, 1, 2, 3, 4, 5]
    for part in parts:
        adults = [i for i in part["people"] if i in (0, 1)]
        assert len(adults) == 1 and len(part["people"]) == 3  # each child with an adult
    assert answer["unplaced"] == [] and _indexes(answer) == [0]


async def test_a_child_bound_to_her_mother_is_never_split_from_her(cap):
    # Two women, a boy and a baby bound to the first (her mother); two beds a facility.
    # Shared out evenly the boy would go with the first woman and the baby with the
    # second; the bond keeps the baby with her mother and the boy goes with the other.
    fac = await cap.facility(name="Uno")
    await cap.pool(fac["id"], total=2)
    other = await cap.facility(name="Dos")
    await cap.pool(other["id"], total=2)
    baby = {"sex": "F", "age": 0, "role": "accompanying_child", "stays_with": 0}
    people = [WOMAN, WOMAN, BOY, baby]
    answer = await _plan(cap, [{"people": people}])
    parts = answer["assignments"]
    assert len(parts) == 2 and all(p["split"] for p in parts), answer
    assert sorted(sorted(p["people"]) for p in parts) == [[0, 3], [1, 2]]
    # The search's split proposal divides the children the same way.
    r = await cap.client.post(
        "/api/v1/availability/search",
        json={"people": people, "state": "09"},
        headers=cap.prosecutor(),
    )
    assert r.status_code == 200, r.text
    split = r.json()["unmet"]["split"]
    assert split is not None
    assert sorted(sorted(p["people"]) for p in split["parts"]) == [[0, 3], [1, 2]]


@pytest.mark.parametrize(
    "person",
    [
        {**WOMAN, "stays_with": 0},  # only a child stays with someone
        {**CHILD, "stays_with": 5},  # nobody at position 5
        {**CHILD, "stays_with": 1},  # herself, a child
    ],
)
async def test_a_bond_to_no_adult_of_the_group_is_refused(cap, person):
    r = await cap.client.post(
        "/api/v1/operations/plan",
        json={"state": "09", "groups": [{"people": [WOMAN, person]}]},
        headers=cap.prosecutor(),
    )
    assert r.status_code == 422 and "stays_with" in r.json()["detail"], r.text


async def test_held_as_adjusted_pinned_moved_and_left_unplaced(cap):
    near = await cap.facility(name="Cerca", state="09")
    far = await cap.facility(name="Lejos", state="02")
    near_pool = await cap.pool(near["id"], total=4)
    far_pool = await cap.pool(far["id"], total=4)
    groups = [{"people": [WOMAN, CHILD]}, {"people": [WOMAN]}, {"people": [WOMAN]}]
    plan = await _plan(cap, groups)
    assert {a["facility_id"] for a in plan["assignments"]} == {near["id"]}
    # The prosecutor moves group 0 to the far facility (sent back as the plan gives it,
    # its other fields ignored), keeps group 1 as planned and leaves group 2 out.
    moved = {"group": 0, "facility_id": far["id"], "facility_name": "Lejos",
             "allocations": [{"pool_id": far_pool["id"], "beds": 2, "pool_name": "x"}]}  # fmt: skip
    kept = next(a for a in plan["assignments"] if a["group"] == 1)
    body = {"name": "Ajustado", "state": "09", "groups": groups,
            "assignments": [moved, kept], "leave_unplaced": [2]}  # fmt: skip
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 201, r.text
    op = r.json()
    where = {a["group"]: a["facility_id"] for a in op["assignments"]}
    assert where == {0: far["id"], 1: near["id"]}
    assert [(u["group"], u["reason"]["code"]) for u in op["unplaced"]] == [(2, "left_unplaced")]
    assert _indexes(op) == [0, 1, 2]
    with Session(db.engine) as s:
        assert s.get(Pool, far_pool["id"]).held == 2  # type: ignore[union-attr]
        assert s.get(Pool, near_pool["id"]).held == 1  # type: ignore[union-attr]
        assert s.exec(select(UnmetRequest)).all() == []  # a choice, not a lack of beds


async def test_a_pinned_split_holds_each_part_with_the_people_named(cap):
    one = await cap.facility(name="Uno")
    two = await cap.facility(name="Dos")
    p1 = await cap.pool(one["id"], total=4)
    p2 = await cap.pool(two["id"], total=4)
    groups = [{"people": [WOMAN, WOMAN, CHILD, BOY]}]
    parts = [
        {"group": 0, "facility_id": one["id"], "split": True,
         "allocations": [{"pool_id": p1["id"], "beds": 2, "people": [0, 3]}]},
        {"group": 0, "facility_id": two["id"], "split": True,
         "allocations": [{"pool_id": p2["id"], "beds": 2, "people": [1, 2]}]},
    ]  # fmt: skip
    body = {"name": "Dividido", "state": "09", "groups": groups, "assignments": parts}
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 201, r.text
    op = r.json()
    assert sorted((a["facility_id"], a["people"], a["split"]) for a in op["assignments"]) == sorted(
        [(one["id"], [0, 3], True), (two["id"], [1, 2], True)]
    )
    assert len({a["hold_id"] for a in op["assignments"]}) == 2


def _pin(fac: str, pool: str, beds: int = 1, **over: Any) -> dict[str, Any]:
    return {"group": 0, "facility_id": fac, "allocations": [{"pool_id": pool, "beds": beds}],
            **over}  # fmt: skip


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda f, p, m: [_pin(f, "no-such-pool")], "assignments[0].allocations[0].pool_id"),
        (lambda f, p, m: [_pin(f, m)], "assignments[0].allocations"),  # men's pool, a woman
        (lambda f, p, m: [_pin(f, p, beds=3)], "assignments[0].allocations"),  # 3 beds, 1 person
        (lambda f, p, m: [_pin(f, p, group=7)], "assignments[0].group"),
        (lambda f, p, m: [_pin(f, p), _pin(f, p)], "assignments[1].group"),
        (lambda f, p, m: [_pin("no-such-facility", p)], "assignments[0].facility_id"),
        (
            lambda f, p, m: [
                {**_pin(f, p), "allocations": [{"pool_id": p, "beds": 2, "people": [0]}]}
            ],
            "assignments[0].allocations[0].beds",
        ),
    ],
)
async def test_bad_pinned_assignments_are_refused_naming_the_field(cap, make, field):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=4)
    men = await cap.pool(fac["id"], name="Hombres", sexes=["M"], accepts_children=False, total=2)
    body = {"name": "Op", "state": "09", "groups": [{"people": [WOMAN]}, {"people": [WOMAN]}],
            "assignments": make(fac["id"], pool["id"], men["id"])}  # fmt: skip
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 422, r.text
    answer = r.json()
    assert answer["error"] == "pinned_assignment_invalid" and field in answer["detail"]
    assert _held_beds() == 0
    with Session(db.engine) as s:
        assert s.exec(select(Operation)).all() == []


async def test_leave_unplaced_out_of_range_or_pinned_is_refused(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=4)
    for leave in ([3], [0], [1, 1]):
        body = {"name": "Op", "state": "09", "groups": [{"people": [WOMAN]}] * 2,
                "assignments": [_pin(fac["id"], pool["id"])], "leave_unplaced": leave}  # fmt: skip
        r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
        assert r.status_code == 422 and "leave_unplaced" in r.json()["detail"], r.text
    assert _held_beds() == 0


async def test_a_pinned_group_whose_beds_went_is_planned_again_never_over_booked(cap):
    fac = await cap.facility(name="Cerca")
    other = await cap.facility(name="Otra", state="15")
    pool = await cap.pool(fac["id"], total=1)
    spare = await cap.pool(other["id"], total=1)
    # Another prosecutor holds the only bed of the pinned pool first.
    r = await cap.client.post(
        "/api/v1/holds",
        json={"allocations": [{"pool_id": pool["id"], "beds": 1}]},
        headers=cap.headers("prosecutor", institution_id="inst-x", sub="fiscal-x"),
    )
    assert r.status_code == 201, r.text
    groups = [{"people": [WOMAN]}, {"people": [WOMAN]}]
    body = {"name": "Tarde", "state": "09", "groups": groups,
            "assignments": [_pin(fac["id"], pool["id"]), _pin(fac["id"], pool["id"], group=1)]}  # fmt: skip
    r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
    assert r.status_code == 201, r.text
    op = r.json()
    assert _indexes(op) == [0, 1]
    # One group re-planned into the spare bed, the other unplaced saying why.
    assert [a["facility_id"] for a in op["assignments"]] == [other["id"]]
    assert "se ocuparon mientras tanto" in op["unplaced"][0]["reason"]["reason"]
    with Session(db.engine) as s:
        for p in (pool, spare):
            row = s.get(Pool, p["id"])
            assert row is not None and row.held == row.total == 1
        assert ledger_mismatches(s) == []


def test_a_plan_out_of_time_says_so_and_still_answers_every_group():
    from capacity.planner import GroupQ, plan
    from capacity.search import FacilityView, NeedsQ, PersonQ, PoolView, Snapshot

    pool = PoolView("p", "f", "Mujeres", frozenset({"F"}), 18, 120, True, 12, 4, False, False,
                    False, False, False, frozenset(), 10, None)  # fmt: skip
    fac = FacilityView("f", "Uno", "refugio", "i", "09", "Centro", "trafficking", [], "high",
                       None, "active", pools={"p": pool})  # fmt: skip
    fac.recompute()
    snap = Snapshot(1, {"f": fac}, [fac], {"09": [fac]})
    groups = [GroupQ(g, [PersonQ(0, "F", 30, "victim")], NeedsQ()) for g in range(3)]
    result, _ = plan(snap, groups, "09", seconds=0.0)
    assert result.stopped == "first_fit" and not result.optimal
    assert sorted(result.unplaced) == [0, 1, 2]
    assert {r["code"] for r in result.unplaced.values()} == {"operation_stopped"}
    result, _ = plan(snap, groups, "09", seconds=30.0)
    assert result.stopped is None and result.optimal and result.placed_people() == 3


def test_a_plan_stopped_after_first_fit_keeps_the_first_fit(monkeypatch):
    """Time running out while other candidates are found (simulated: the scan says so)
    leaves the first-fit plan of every group, and the answer says what was cut short."""
    from capacity import planner
    from capacity.planner import GroupQ, OutOfTime, plan
    from capacity.search import FacilityView, NeedsQ, PersonQ, PoolView, Snapshot

    def pool(pid: str, fid: str) -> PoolView:
        return PoolView(pid, fid, "Mujeres", frozenset({"F"}), 18, 120, True, 12, 4, False,
                        False, False, False, False, frozenset(), 2, None)  # fmt: skip

    facs = []
    for fid, state in (("a", "09"), ("b", "15")):
        fac = FacilityView(fid, fid, "refugio", "i", state, "Centro", "trafficking", [],
                           "high", None, "active", pools={fid: pool(fid, fid)})  # fmt: skip
        fac.recompute()
        facs.append(fac)
    snap = Snapshot(1, {f.id: f for f in facs}, facs, {"09": [facs[0]], "15": [facs[1]]})
    groups = [GroupQ(g, [PersonQ(0, "F", 30, "victim")], NeedsQ()) for g in range(3)]

    def out_of_time(self: Any, limit: int) -> list[Any]:
        raise OutOfTime

    monkeypatch.setattr(planner._Fitting, "first", out_of_time)
    result, _ = plan(snap, groups, "09", seconds=30.0)
    assert result.stopped == "candidates" and not result.optimal
    assert result.placed_people() == 3 and result.unplaced == {}
    assert sorted(p.pattern.facility.id for p in result.parts) == ["a", "a", "b"]


async def test_candidates_of_one_group_leave_out_beds_the_plan_uses_and_say_why(cap):
    near = await cap.facility(name="Cerca", state="09")
    far = await cap.facility(name="Lejos", state="02")
    full = await cap.pool(near["id"], total=2)
    await cap.pool(far["id"], total=2)
    body = {"state": "09", "group": {"people": [WOMAN, CHILD]}, "taken": {full["id"]: 1}}
    r = await cap.client.post("/api/v1/operations/candidates", json=body, headers=cap.prosecutor())
    assert r.status_code == 200, r.text
    answer = r.json()
    # One bed of the near pool is the plan's already: only the far facility seats both.
    assert [c["facility_id"] for c in answer["candidates"]] == [far["id"]]
    assert answer["candidates"][0]["people"] == [0, 1]
    assert answer["candidates"][0]["eligible_free"] == 2
    assert any("Persona 1" in e["reason"] for e in answer["explanations"])
    # One part of the group (the woman alone) may go to the near one.
    r = await cap.client.post(
        "/api/v1/operations/candidates",
        json={**body, "people": [0]},
        headers=cap.prosecutor(),
    )
    assert [c["facility_id"] for c in r.json()["candidates"]] == [near["id"], far["id"]]
    # Nobody takes a man: no candidates, and why.
    r = await cap.client.post(
        "/api/v1/operations/candidates",
        json={"state": "09", "group": {"people": [MAN]}},
        headers=cap.prosecutor(),
    )
    assert r.json()["candidates"] == [] and r.json()["unmet"]["code"] == "no_eligible_pool"
    r = await cap.client.post(
        "/api/v1/operations/candidates",
        json={**body, "people": [0, 5]},
        headers=cap.prosecutor(),
    )
    assert r.status_code == 422 and "people" in r.json()["detail"]
    r = await cap.client.post("/api/v1/operations/candidates", json=body, headers=cap.coordinator())
    assert r.status_code == 403


async def test_bad_pinned_splits_are_refused_naming_the_field(cap):
    one = await cap.facility(name="Uno")
    p1 = await cap.pool(one["id"], total=4)
    baby = {"sex": "F", "age": 0, "role": "accompanying_child", "stays_with": 0}
    groups = [{"people": [WOMAN, WOMAN, baby]}]

    def part(people: list[int], **over: Any) -> dict[str, Any]:
        alloc = {"pool_id": p1["id"], "beds": len(people), "people": people}
        return {"group": 0, "facility_id": one["id"], "split": True, "allocations": [alloc],
                **over}  # fmt: skip

    cases = [
        ([part([0, 2]), {**part([1]), "allocations": [{"pool_id": p1["id"], "beds": 1}]}],
         "assignments[1].allocations"),  # a part that does not say who
        ([part([0, 2])], "assignments[0].allocations"),  # person 2 left without a bed
        ([part([0]), part([1, 2])], "assignments[0].allocations"),  # baby away from her mother
        ([part([0, 1]), part([2])], "assignments[1].allocations[0].pool_id"),  # baby alone
        ([part([0, 2]), part([1, 1])], "assignments[1].allocations[0].people"),  # twice
    ]  # fmt: skip
    for pins, field in cases:
        body = {"name": "Op", "state": "09", "groups": groups, "assignments": pins}
        r = await cap.client.post("/api/v1/operations", json=body, headers=cap.prosecutor())
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith(field), (field, r.text)
    assert _held_beds() == 0

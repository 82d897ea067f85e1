"""The contract's "Vocabulary used in bodies" in capacity: a person's sex or age not recorded
(``null``) is a value of its own, matched by the safe rule; an optional field sent as
``null`` means the same as leaving it out."""

from __future__ import annotations

from sqlmodel import select

from capacity.database import db
from capacity.models import Pool, UnmetRequest


async def test_unknown_sex_matches_only_pools_open_to_every_sex(cap):
    """Bug: ``"sex": null`` was refused (422) — and must never be read as F, M or X."""
    fac = await cap.facility()
    women = await cap.pool(fac["id"], name="Mujeres", accepts_children=False, max_child_age=0,
                           max_children=0)  # fmt: skip
    anyone = await cap.pool(fac["id"], name="Todas las personas", sexes=["F", "M", "X"],
                            accepts_children=False, max_child_age=0, max_children=0)  # fmt: skip
    answer = await cap.search([{"sex": None, "age": 30, "role": "victim"}])
    offered = {p["pool_id"] for r in answer["results"] for p in r["pools"]}
    assert offered == {anyone["id"]}, "only the pool open to every sex"
    assert women["id"] not in offered
    assert any("sexo" in w and "no está registrado" in w for w in answer["warnings"])


async def test_unknown_sex_with_no_open_pool_is_unmet_saying_so_and_recorded_as_si(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], sexes=["F", "X"])
    answer = await cap.search([{"sex": None, "age": 25, "role": "victim"}], state="09")
    unmet = answer["unmet"]
    assert unmet["code"] == "no_eligible_pool"
    assert "sin sexo registrado" in unmet["reason"]
    assert "sexo no registrado" in unmet["reason"]
    assert unmet["sex"] is None
    with db.new_session() as session:
        (row,) = session.exec(select(UnmetRequest)).all()
    assert row.sex is None, "stored as NULL (S.I.), never as X"
    assert row.people[0]["sex"] is None


async def test_unknown_age_matches_only_pools_taking_minors_and_adults(cap):
    fac = await cap.facility()
    adults = await cap.pool(fac["id"], name="Adultas", min_age=18, max_age=120)
    both = await cap.pool(fac["id"], name="Todas las edades", min_age=12, max_age=120)
    answer = await cap.search([{"sex": "F", "age": None, "role": "victim"}])
    offered = {p["pool_id"] for r in answer["results"] for p in r["pools"]}
    assert offered == {both["id"]}
    assert adults["id"] not in offered


async def test_pool_with_null_max_child_age_is_the_same_as_leaving_it_out(cap):
    """Bug: ``"max_child_age": null`` on a pool that takes no children was a 422."""
    fac = await cap.facility()
    body = {"name": "Hombres", "sexes": ["M"], "min_age": 18, "max_age": 120, "total": 3,
            "accepts_children": False, "max_child_age": None, "max_children": None,
            "wheelchair_accessible": None}  # fmt: skip
    r = await cap.client.post(
        f"/api/v1/facilities/{fac['id']}/pools", json=body, headers=cap.admin()
    )
    assert r.status_code == 201, r.text
    pool = r.json()
    assert pool["max_child_age"] == 0 and pool["max_children"] == 0
    assert pool["wheelchair_accessible"] is False
    # PATCH: null leaves the field unchanged, exactly as leaving it out
    r = await cap.client.patch(
        f"/api/v1/pools/{pool['id']}",
        json={"max_child_age": None, "name": None, "min_age": None},
        headers=cap.admin(),
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Hombres" and r.json()["min_age"] == 18


async def test_facility_patch_null_address_leaves_it_unchanged(cap):
    fac = await cap.facility()
    r = await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"address": None, "max_stay_days": None},
        headers=cap.admin(),
    )
    assert r.status_code == 200, r.text
    r = await cap.client.get(f"/api/v1/facilities/{fac['id']}", headers=cap.admin())
    assert r.json()["address"] == "Calle Secreta 123, Col. Centro"
    assert r.json()["max_stay_days"] == 90


async def test_invalid_sex_in_search_is_422_in_spanish_and_nothing_written(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"])
    r = await cap.client.post(
        "/api/v1/availability/search",
        json={"people": [{"sex": "Q", "age": 30, "role": "victim"}]},
        headers=cap.prosecutor(),
    )
    assert r.status_code == 422
    assert r.json()["error"] == "validation_error"
    assert "sexo" in r.json()["detail"]
    with db.new_session() as session:
        assert session.exec(select(UnmetRequest)).all() == []
        assert len(session.exec(select(Pool)).all()) == 1

"""Availability search: eligibility, families together, unknown ages, ranking, staleness."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from capacity.database import db, outbox
from capacity.models import UnmetRequest
from services.clock import clock

MOTHER = {"sex": "F", "age": 31, "role": "victim"}
SON_4 = {"sex": "M", "age": 4, "role": "accompanying_child"}
DAUGHTER_9 = {"sex": "F", "age": 9, "role": "accompanying_child"}
MAN = {"sex": "M", "age": 35, "role": "victim"}


async def test_mother_with_son_and_daughter_go_together_to_a_womens_pool(cap):
    fac = await cap.facility()
    women = await cap.pool(fac["id"], max_child_age=12, max_children=3, total=3)
    await cap.pool(fac["id"], name="Solo mujeres", accepts_children=False, total=10)
    answer = await cap.search([MOTHER, SON_4, DAUGHTER_9], state="09")
    assert answer["unmet"] is None
    [result] = answer["results"]
    assert result["facility"]["id"] == fac["id"] and "address" not in result["facility"]
    assert "Calle Secreta" not in str(answer)
    assert result["pools"] == [
        {"pool_id": women["id"], "pool_name": women["name"], "beds": 3, "people": [0, 1, 2]}
    ]
    assert result["stale"] is False


async def test_children_limits_are_respected(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], max_child_age=6, max_children=3, total=5)
    answer = await cap.search([MOTHER, SON_4, DAUGHTER_9])
    assert answer["results"] == []
    assert answer["unmet"]["code"] == "children_not_accepted"
    assert "de hasta 9 años" in answer["unmet"]["reason"]
    fac2 = await cap.facility(name="Otra")
    await cap.pool(fac2["id"], max_child_age=12, max_children=1, total=5)
    answer = await cap.search([MOTHER, SON_4, DAUGHTER_9])
    assert answer["results"] == []
    answer = await cap.search([MOTHER, SON_4])
    assert {r["facility"]["id"] for r in answer["results"]} == {fac["id"], fac2["id"]}


async def test_adult_man_is_unmet_with_a_reason_and_recorded(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"])
    answer = await cap.search([MAN], state="09")
    assert answer["results"] == []
    unmet = answer["unmet"]
    assert unmet["code"] == "no_eligible_pool"
    assert (
        "ninguna instalación activa acepta hombres adultos en Ciudad de México ni en otro estado"
        in unmet["reason"]
    )
    with Session(db.engine) as s:
        [row] = s.exec(select(UnmetRequest)).all()
        assert (row.sex, row.age_group, row.state, row.code) == ("M", "adult", "09", row.code)
        assert row.people == [
            {"sex": "M", "age_group": "adult", "age_band": "18-59", "role": "victim"}
        ]
    with db.engine.connect() as conn:
        types = [r.type for r in conn.execute(select(outbox.table.c.type))]
    assert "capacity.search.unmet" in types


async def test_unknown_age_never_lands_in_an_adults_or_children_only_pool(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], min_age=18, max_age=120)
    await cap.pool(fac["id"], name="Niñas", min_age=0, max_age=17, accepts_children=False)
    answer = await cap.search([{"sex": "F", "age": None, "role": "victim"}])
    assert answer["results"] == []
    assert answer["unmet"]["code"] == "no_eligible_pool"
    assert "edad desconocida" in answer["unmet"]["reason"]
    assert any("Procuraduría de Protección" in w for w in answer["warnings"])
    mixed = await cap.pool(fac["id"], name="Mixto", min_age=12, max_age=60)
    answer = await cap.search([{"sex": "F", "age": None, "role": "victim"}])
    assert [p["pool_id"] for p in answer["results"][0]["pools"]] == [mixed["id"]]
    assert answer["warnings"]  # still told what is needed
    answer = await cap.search([MOTHER, {"sex": "M", "age": None, "role": "accompanying_child"}])
    assert answer["unmet"]["code"] == "child_age_unknown"


async def test_needs_and_roles_filter_pools(cap):
    fac = await cap.facility()
    await cap.pool(fac["id"], interpreter_languages=["Tsotsil"], total=2)
    answer = await cap.search([MOTHER], needs={"wheelchair": True})
    assert answer["unmet"]["code"] == "needs_not_met"
    assert "silla de ruedas" in answer["unmet"]["reason"]
    answer = await cap.search([MOTHER], needs={"interpreter_language": "tsotsil"})
    assert len(answer["results"]) == 1
    answer = await cap.search([{**MOTHER, "role": "witness"}])
    assert answer["unmet"]["code"] == "no_eligible_pool" and "testigos" in answer["unmet"]["reason"]
    answer = await cap.search([MOTHER], needs={"security": "maximum"})
    assert answer["unmet"]["code"] == "needs_not_met"


async def test_full_pools_and_inactive_facilities_are_not_offered(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=1)
    await cap.client.post(
        f"/api/v1/pools/{pool['id']}/ledger",
        json={"kind": "admit", "beds": 1, "reason": "ingreso"},
        headers=cap.coordinator(),
    )
    answer = await cap.search([MOTHER])
    assert answer["unmet"]["code"] == "no_beds_now"
    fac2 = await cap.facility(active=False, name="Registrada")
    await cap.pool(fac2["id"], total=5)
    assert (await cap.search([MOTHER]))["results"] == []
    await cap.client.patch(
        f"/api/v1/facilities/{fac2['id']}",
        json={"status": "active", "reason": "visita"},
        headers=cap.admin(),
    )
    assert [r["facility"]["id"] for r in (await cap.search([MOTHER]))["results"]] == [fac2["id"]]
    answer = await cap.search([MOTHER, MOTHER, MOTHER, MOTHER, MOTHER, MOTHER])
    assert answer["unmet"]["code"] == "group_not_together"


async def test_ranking_same_state_then_freshest_then_most_room(cap):
    t0 = clock.freeze()
    other_state = await cap.facility(name="Jalisco", state="14")
    await cap.pool(other_state["id"], total=9)
    clock.advance(timedelta(minutes=1))
    old = await cap.facility(name="CDMX antigua")
    await cap.pool(old["id"], total=9)
    clock.advance(timedelta(minutes=1))
    small = await cap.facility(name="CDMX chica")
    await cap.pool(small["id"], total=2)
    big = await cap.facility(name="CDMX grande")
    await cap.pool(big["id"], total=5)
    answer = await cap.search([MOTHER], state="09")
    names = [r["facility"]["name"] for r in answer["results"]]
    assert names == ["CDMX grande", "CDMX chica", "CDMX antigua", "Jalisco"]
    assert [r["same_state"] for r in answer["results"]] == [True, True, True, False]
    answer = await cap.search([MOTHER], state="14")
    assert answer["results"][0]["facility"]["name"] == "Jalisco"
    assert clock.now() - t0 == timedelta(minutes=2)


async def test_stale_until_confirmed(cap):
    clock.freeze()
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    assert (await cap.search([MOTHER]))["results"][0]["stale"] is False
    clock.advance(timedelta(hours=25))
    assert (await cap.search([MOTHER]))["results"][0]["stale"] is True
    r = await cap.client.post(f"/api/v1/pools/{pool['id']}/confirm", headers=cap.coordinator())
    assert r.status_code == 200
    assert (await cap.search([MOTHER]))["results"][0]["stale"] is False


async def test_search_permissions_and_bad_input(cap):
    body = {"people": [MOTHER]}
    # A shelter's coordinator searches too: to send a person onward (ADR 0021).
    roles = [("observer", 403), ("institution_admin", 403), ("shelter_coordinator", 200),
             ("dif_officer", 200)]  # fmt: skip
    for role, status in roles:
        r = await cap.client.post(
            "/api/v1/availability/search", json=body, headers=cap.headers(role)
        )
        assert r.status_code == status, role
    for bad, fragment in [
        ({"people": []}, "al menos 1"),
        ({"people": [{"sex": "W", "age": 3}]}, "sexo admitido"),
        ({"people": [{"sex": "F", "age": -1}]}, "mayor o igual a 0"),
        ({"people": [MOTHER], "state": "40"}, "clave INEGI"),
        ({"people": [MOTHER], "needs": {"pets": True}}, "campo desconocido"),
        ({"people": [{**MOTHER, "role": "boss"}]}, "papel admitido"),
    ]:
        r = await cap.client.post("/api/v1/availability/search", json=bad, headers=cap.prosecutor())
        assert r.status_code == 422, bad
        assert fragment in r.json()["detail"], r.json()["detail"]


async def test_read_model_follows_changes_incrementally(cap):
    from capacity.search import ReadModel

    model = ReadModel()
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=2)
    with db.engine.connect() as conn:
        model.refresh(conn)
    assert model.facilities[fac["id"]].available == 2
    first = model.revision
    assert (await cap.hold([{"pool_id": pool["id"], "beds": 1}])).status_code == 201
    with db.engine.connect() as conn:
        model.refresh(conn)
    assert model.revision > first and model.facilities[fac["id"]].available == 1
    await cap.client.patch(
        f"/api/v1/facilities/{fac['id']}",
        json={"status": "suspended", "reason": "revisión"},
        headers=cap.admin(),
    )
    with db.engine.connect() as conn:
        model.refresh(conn)
    assert fac["id"] not in model.facilities and model.ordered == []

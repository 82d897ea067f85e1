"""The roster: facilities, their lifecycle, and who sees an address."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from canaliza.demo import CASA_MERCEDES, FGR, SEGOB
from capacity.database import db
from capacity.models import Facility, FacilityStatusChange


async def test_create_read_and_address_only_for_allowed_roles(cap):
    fac = await cap.facility()
    assert fac["status"] == "active" and fac["address"] == "Calle Secreta 123, Col. Centro"
    url = f"/api/v1/facilities/{fac['id']}"
    seen = {
        "prosecutor": cap.headers("prosecutor", institution_id=FGR.id),
        "segob_auditor": cap.headers("segob_auditor", institution_id=SEGOB.id),
        "dif_officer": cap.headers("dif_officer"),
        "other_coordinator": cap.coordinator(institution_id=FGR.id),
        "own_coordinator": cap.coordinator(),
        "own_institution_admin": cap.headers("institution_admin", institution_id=CASA_MERCEDES.id),
        "service": cap.service(),
        "platform_admin": cap.admin(),
    }
    for who, headers in seen.items():
        r = await cap.client.get(url, headers=headers)
        assert r.status_code == 200, who
        body = r.json()
        allowed = who in ("own_coordinator", "own_institution_admin", "service", "platform_admin")
        assert ("address" in body) is allowed, who
        assert ("Calle Secreta" in r.text) is allowed, who
        listing = await cap.client.get("/api/v1/facilities", headers=headers)
        assert ("Calle Secreta" in listing.text) is allowed, who
    r = await cap.client.get(url, headers=cap.headers("observer"))
    assert r.status_code == 403


async def test_status_lifecycle_records_date_and_reason(cap):
    fac = await cap.facility(active=False)
    assert fac["status"] == "registered"
    url = f"/api/v1/facilities/{fac['id']}"
    for status in ("active", "suspended", "active", "closed"):
        r = await cap.client.patch(
            url, json={"status": status, "reason": f"motivo {status}"}, headers=cap.admin()
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status and r.json()["status_reason"] == f"motivo {status}"
    r = await cap.client.patch(
        url, json={"status": "active", "reason": "reabrir"}, headers=cap.admin()
    )
    assert r.status_code == 409 and r.json()["error"] == "invalid_status_transition"
    assert "cerrada" in r.json()["detail"]
    hist = (await cap.client.get(url + "/status-history", headers=cap.admin())).json()
    assert [h["to_status"] for h in hist] == [
        "registered", "active", "suspended", "active", "closed",
    ]  # fmt: skip
    r = await cap.client.patch(url, json={"status": "active"}, headers=cap.admin())
    assert r.status_code == 422 and "motivo" in r.json()["detail"]
    r = await cap.client.patch(
        url, json={"status": "closed", "reason": "x y z"}, headers=cap.coordinator()
    )
    assert r.status_code == 403


async def test_list_filters_and_pagination(cap):
    await cap.facility(name="A", state="09")
    await cap.facility(name="B", state="09", kind="albergue")
    await cap.facility(name="C", state="14", active=False)
    h = cap.prosecutor()
    r = await cap.client.get("/api/v1/facilities?state=09", headers=h)
    assert r.json()["total"] == 2
    r = await cap.client.get("/api/v1/facilities?kind=albergue", headers=h)
    assert [f["name"] for f in r.json()["items"]] == ["B"]
    r = await cap.client.get("/api/v1/facilities?status=registered", headers=h)
    assert [f["name"] for f in r.json()["items"]] == ["C"]
    r = await cap.client.get("/api/v1/facilities?limit=1&offset=1", headers=h)
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 1
    r = await cap.client.get("/api/v1/facilities?state=99", headers=h)
    assert r.status_code == 422


async def test_only_platform_admin_registers_facilities(cap):
    body = {
        "name": "X",
        "kind": "albergue",
        "operator_institution_id": CASA_MERCEDES.id,
        "state": "09",
        "municipality": "Tlalpan",
    }
    for headers in (cap.coordinator(), cap.prosecutor(), cap.headers("segob_auditor")):
        r = await cap.client.post("/api/v1/facilities", json=body, headers=headers)
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"kind": "prision"}, "lugar de detención"),
        ({"kind": "estacion_migratoria"}, "no es un tipo de instalación"),
        ({"state": "33"}, "clave INEGI"),
        ({"state": "9"}, "clave INEGI"),
        ({"name": "x" * 201}, "como máximo 200 caracteres"),
        ({"max_stay_days": -3}, "mayor o igual a 1"),
        ({"max_stay_days": 2.5}, "número entero"),
        ({"services": ["spa"]}, "servicio reconocido"),
        ({"color": "rojo"}, "campo desconocido"),
        ({"status": "closed"}, "estado inicial"),
    ],
)
async def test_bad_facility_input_is_refused_in_spanish_and_writes_nothing(cap, change, fragment):
    body = {
        "name": "Refugio",
        "kind": "refugio",
        "operator_institution_id": CASA_MERCEDES.id,
        "state": "09",
        "municipality": "Coyoacán",
        **change,
    }
    r = await cap.client.post("/api/v1/facilities", json=body, headers=cap.admin())
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]
    with Session(db.engine) as s:
        assert s.execute(select(func.count()).select_from(Facility)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(FacilityStatusChange)).scalar_one() == 0


async def test_unknown_facility_is_404(cap):
    r = await cap.client.get("/api/v1/facilities/nope", headers=cap.prosecutor())
    assert r.status_code == 404 and r.json()["error"] == "facility_not_found"


async def test_observer_is_kept_out_of_every_capacity_route(cap):
    fac = await cap.facility()
    pool = await cap.pool(fac["id"])
    h = cap.headers("observer", institution_id="cndh")
    calls = [
        ("GET", "/api/v1/capacity/ping", None),
        ("GET", "/api/v1/facilities", None),
        ("GET", f"/api/v1/facilities/{fac['id']}", None),
        ("GET", f"/api/v1/facilities/{fac['id']}/pools", None),
        ("GET", f"/api/v1/pools/{pool['id']}", None),
        ("GET", f"/api/v1/pools/{pool['id']}/ledger", None),
        ("POST", f"/api/v1/pools/{pool['id']}/confirm", None),
        ("POST", "/api/v1/availability/search", {"people": [{"sex": "F", "age": 30}]}),
        ("POST", "/api/v1/holds", {"allocations": [{"pool_id": pool["id"], "beds": 1}]}),
    ]
    for method, url, body in calls:
        r = await cap.client.request(method, url, json=body, headers=h)
        assert r.status_code == 403, url
    assert (await cap.client.get("/api/v1/facilities")).status_code == 401


async def test_the_hold_expiry_task_runs_with_the_app(capacity_app, auth_headers):
    from tests.conftest import running

    async with running(capacity_app):
        names = [t.get_name() for t in capacity_app.state.runtime.tasks]
        assert "capacity-hold-expiry" in names
        assert not any(t.done() for t in capacity_app.state.runtime.tasks)

"""Referral and capacity in one process: the typed client goes through the ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from capacity import main as capacity_main
from capacity.database import db as capacity_db
from capacity.models import Hold
from referral import main as referral_main
from referral.database import db as referral_db
from services.app import create_app
from services.bus import InProcessBus
from services.clients import ClientCredentials
from tests.conftest import running


@pytest.fixture
async def both(test_verifier, auth_headers, make_token, monkeypatch) -> AsyncIterator[Any]:
    capacity_db.configure()
    referral_db.configure()
    service_token = make_token("service", sub="referral-service", ttl=3600)

    async def token(self: ClientCredentials) -> str:
        return service_token

    monkeypatch.setattr(ClientCredentials, "token", token)
    app = create_app([capacity_main.service(), referral_main.service()], bus=InProcessBus())
    admin = auth_headers("platform_admin", sub="admin")
    try:
        async with running(app) as client:
            for inst in (FGR, CASA_MERCEDES):
                r = await client.post(
                    "/api/v1/institutions",
                    json={"id": inst.id, "name": inst.name, "type": inst.type, "state": inst.state},
                    headers=admin,
                )
                assert r.status_code == 201, r.text
            r = await client.post(
                "/api/v1/facilities",
                json={
                    "name": "Refugio Esperanza",
                    "kind": "refugio",
                    "operator_institution_id": CASA_MERCEDES.id,
                    "state": "09",
                    "municipality": "Cuauhtémoc",
                    "address": "Calle Secreta 123, Col. Centro",
                },
                headers=admin,
            )
            assert r.status_code == 201, r.text
            facility = r.json()
            r = await client.patch(
                f"/api/v1/facilities/{facility['id']}",
                json={"status": "active", "reason": "visita de verificación"},
                headers=admin,
            )
            assert r.status_code == 200, r.text
            r = await client.post(
                f"/api/v1/facilities/{facility['id']}/pools",
                json={"name": "Mujeres", "sexes": ["F"], "min_age": 18, "max_age": 120, "total": 3},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            pool = r.json()
            r = await client.post(
                "/api/v1/agreements",
                json={
                    "number": "CONV-E2E-1",
                    "title": "Convenio FEVIMTRA — Casa de las Mercedes",
                    "party_ids": [FGR.id, CASA_MERCEDES.id],
                    "valid_from": "2020-01-01",
                    "valid_to": "2099-12-31",
                },
                headers=admin,
            )
            agreement = r.json()
            for inst in (FGR, CASA_MERCEDES):
                r = await client.post(
                    f"/api/v1/agreements/{agreement['id']}/sign",
                    json={"institution_id": inst.id},
                    headers=admin,
                )
            assert r.json()["status"] == "signed"
            yield client, auth_headers, facility, pool
    finally:
        capacity_db.dispose()
        referral_db.dispose()


async def _referral(client, h, facility, pool) -> dict[str, Any]:
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    r = await client.post(
        "/api/v1/holds", json={"allocations": [{"pool_id": pool["id"], "beds": 1}]}, headers=fiscal
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    r = await client.post(
        "/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": facility["id"],
            "hold_id": hold["id"],
            "people": [{"sex": "F", "age": 28, "role": "victim", "nationality": "MEX"}],
            "consent": {"given": True},
            "urgency": "urgent",
        },
        headers=fiscal,
    )
    assert r.status_code == 201, r.text
    ref = r.json()
    r = await client.post(f"/api/v1/referrals/{ref['id']}/send", headers=fiscal)
    assert r.status_code == 200, r.text
    return r.json()


async def _pool(client, h, pool) -> dict[str, Any]:
    r = await client.get(f"/api/v1/pools/{pool['id']}", headers=h("platform_admin"))
    return r.json()


async def test_admission_consumes_the_hold_and_discharge_frees_the_bed(both):
    client, h, facility, pool = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    ref = await _referral(client, h, facility, pool)
    assert (await _pool(client, h, pool))["held"] == 1
    r = await client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=fiscal)
    assert r.status_code == 409
    r = await client.post(f"/api/v1/referrals/{ref['id']}/accept", headers=coord)
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=fiscal)
    assert r.status_code == 200, r.text
    assert r.json()["address"] == "Calle Secreta 123, Col. Centro"
    r = await client.post(f"/api/v1/referrals/{ref['id']}/admit", headers=coord)
    assert r.status_code == 200, r.text
    counts = await _pool(client, h, pool)
    assert (counts["held"], counts["occupied"]) == (0, 1)
    r = await client.get(f"/api/v1/holds/{ref['hold_id']}", headers=h("platform_admin"))
    assert r.json()["status"] == "consumed"
    r = await client.post(
        f"/api/v1/referrals/{ref['id']}/discharge",
        json={"outcome": "reintegrated_origin"},
        headers=coord,
    )
    assert r.status_code == 200, r.text
    counts = await _pool(client, h, pool)
    assert (counts["occupied"], counts["available"]) == (0, 3)


async def test_decline_releases_the_hold_in_capacity(both):
    client, h, facility, pool = both
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    ref = await _referral(client, h, facility, pool)
    r = await client.post(
        f"/api/v1/referrals/{ref['id']}/decline", json={"reason": "Sin cupo"}, headers=coord
    )
    assert r.status_code == 200, r.text
    r = await client.get(f"/api/v1/holds/{ref['hold_id']}", headers=h("platform_admin"))
    assert r.json()["status"] == "released"
    assert (await _pool(client, h, pool))["available"] == 3


async def test_a_draft_naming_an_unknown_facility_is_refused(both):
    """Checked when the draft is created (review 2026-12): a 422, not capacity's 404."""
    client, h, _, _ = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    r = await client.post(
        "/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": "00000000-0000-4000-8000-00000000dead",
            "people": [{"sex": "F", "age": 28, "role": "victim", "nationality": "MEX"}],
            "consent": {"given": True},
            "urgency": "normal",
        },
        headers=fiscal,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "facility_not_found"
    assert (await client.get("/api/v1/referrals", headers=fiscal)).json() == []


async def test_a_referral_from_an_operation_names_it_and_keeps_its_hold_on_release(both):
    """Issue 16: the referral made with an operation's hold names the operation (without
    saying so in its body), the list filters by it, and releasing the operation gives back
    only the beds no referral names."""
    client, h, facility, pool = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    woman = {"sex": "F", "age": 28, "role": "victim"}
    r = await client.post(
        "/api/v1/operations",
        json={"name": "Operativo", "state": "09", "groups": [{"people": [woman]}] * 2},
        headers=fiscal,
    )
    assert r.status_code == 201, r.text
    op = r.json()
    first, second = (a["hold_id"] for a in op["assignments"])
    r = await client.post(
        "/api/v1/referrals",
        json={
            "sending_institution_id": FGR.id,
            "receiving_institution_id": CASA_MERCEDES.id,
            "facility_id": facility["id"],
            "hold_id": first,
            "people": [{**woman, "nationality": "MEX"}],
            "consent": {"given": True},
            "urgency": "urgent",
        },
        headers=fiscal,
    )
    assert r.status_code == 201, r.text
    ref = r.json()
    assert ref["operation_id"] == op["id"]
    listed = await client.get(f"/api/v1/referrals?operation_id={op['id']}", headers=fiscal)
    assert [x["id"] for x in listed.json()] == [ref["id"]]
    other = await client.get("/api/v1/referrals?operation_id=otro", headers=fiscal)
    assert other.json() == []
    # Capacity learns from the referral's event that the hold is the referral's.
    for _ in range(200):
        with capacity_db.unit_of_work(write=False) as s:
            held = s.get(Hold, first)
            if held is not None and held.referral_id == ref["id"]:
                break
        await asyncio.sleep(0.02)
    r = await client.delete(f"/api/v1/operations/{op['id']}", headers=fiscal)
    assert r.status_code == 200, r.text
    assert r.json()["holds"] == {first: "active", second: "released"}
    assert (await _pool(client, h, pool))["held"] == 1

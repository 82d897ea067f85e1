"""Each foreign person's migration route; INM and CEAV/CEEAV routing; assisted return (ADR 0022)."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import select

from referral.database import db
from referral.models import MigrationRoute, Referral
from tests.referral.conftest import CEAV, FGR, INM, NGO

INM_JALISCO = "00000000-0000-4000-8000-000000000015"
CEEAV_JALISCO = "00000000-0000-4000-8000-000000000016"

ADULT = {"sex": "F", "age": 30, "role": "victim", "nationality": "HND"}
GIRL = {"sex": "F", "age": 15, "role": "victim", "nationality": "GTM"}


async def _institution(ctx: Any, iid: str, name: str, type_: str, state: str, **kw: Any) -> None:
    r = await ctx.client.post(
        "/api/v1/institutions",
        json={"id": iid, "name": name, "type": type_, "state": state, **kw},
        headers=ctx.admin,
    )
    assert r.status_code == 201, r.text


async def _admitted(ctx: Any, **over: Any) -> dict[str, Any]:
    await ctx.agreement()
    ref = await ctx.sent_referral(**over)
    assert (await ctx.act(ref["id"], "accept", ctx.coord)).status_code == 200
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _inm(ctx: Any, institution_id: str = INM) -> dict[str, str]:
    return dict(ctx.h("inm_officer", institution_id=institution_id))


def _route(**over: Any) -> dict[str, Any]:
    return {
        "route": "humanitarian_regularisation",
        "status": "in_process",
        "started_on": "2026-11-02",
        **over,
    }


async def _routes(ctx: Any, ref_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await ctx.client.get(f"/api/v1/referrals/{ref_id}/migration-routes", headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json())


def _stored_routes() -> list[MigrationRoute]:
    with db.new_session() as s:
        return list(s.exec(select(MigrationRoute)).all())


async def test_inm_obligation_goes_to_the_regional_office_of_the_state(ctx):
    await _institution(ctx, INM_JALISCO, "INM — Oficina de Representación en Jalisco", "inm", "14",
                       parent_id=INM)  # fmt: skip
    jalisco = await ctx.referral(state="14", people=[GIRL])
    kinds = {o["kind"]: o["institution_id"] for o in jalisco["obligations"]}
    assert kinds["inm_migration_status"] == INM_JALISCO
    # a foreign minor: the office's child protection officers are brought in too
    assert kinds["inm_child_protection"] == INM_JALISCO
    cdmx = await ctx.referral(people=[ADULT])  # no regional office registered in CDMX
    kinds = {o["kind"]: o["institution_id"] for o in cdmx["obligations"]}
    assert kinds["inm_migration_status"] == INM
    assert "inm_child_protection" not in kinds


async def test_ceav_for_indirect_victims_routed_to_the_state_commission(ctx):
    await _institution(ctx, CEEAV_JALISCO, "Comisión Estatal de Atención a Víctimas de Jalisco",
                       "ceeav", "14")  # fmt: skip
    indirect = {"sex": "M", "age": 40, "role": "indirect_victim", "nationality": "MEX"}
    jalisco = await ctx.referral(state="14", people=[indirect])
    ceav = next(o for o in jalisco["obligations"] if o["kind"] == "ceav_registration")
    assert ceav["institution_id"] == CEEAV_JALISCO
    cdmx = await ctx.referral(people=[indirect])
    ceav_cdmx = next(o for o in cdmx["obligations"] if o["kind"] == "ceav_registration")
    assert ceav_cdmx["institution_id"] == CEAV  # no state commission: the federal CEAV
    url = f"/api/v1/referrals/{jalisco['id']}/obligations/{ceav['id']}/fulfil"
    # the federal CEAV does not attend the state commission's obligation (nor sees the referral)
    r = await ctx.client.post(
        url, json={"renavi_folio": "RENAVI-14-0007"}, headers=ctx.h("ceav_officer", institution_id=CEAV)
    )  # fmt: skip
    assert r.status_code == 404
    ceeav = ctx.h("ceav_officer", institution_id=CEEAV_JALISCO)
    r = await ctx.client.post(url, json={"renavi_folio": "RENAVI-14-0007"}, headers=ceeav)
    assert r.status_code == 200, r.text
    assert r.json()["renavi_folio"] == "RENAVI-14-0007" and r.json()["status"] == "fulfilled"
    # the folio belongs to the CEAV/CEEAV obligation only
    other = await ctx.referral(people=[ADULT])
    inm = next(o for o in other["obligations"] if o["kind"] == "inm_migration_status")
    r = await ctx.client.post(
        f"/api/v1/referrals/{other['id']}/obligations/{inm['id']}/fulfil",
        json={"renavi_folio": "X-1"},
        headers=_inm(ctx),
    )
    assert r.status_code == 422 and "renavi_folio" in r.json()["detail"]


async def test_route_per_person_recorded_by_the_attending_inm_office(ctx):
    ref = await ctx.referral(
        people=[ADULT, {"sex": "F", "age": 8, "role": "accompanying_child", "nationality": "MEX"}]
    )
    inm = _inm(ctx)
    routes = await _routes(ctx, ref["id"], inm)
    assert [(r["position"], r["nationality"], r["route"]) for r in routes] == [(0, "HND", None)]
    person = routes[0]["person_id"]
    url = f"/api/v1/referrals/{ref['id']}/people/{person}/migration-route"
    body = _route(status="granted", humanitarian_visa_number="VH-2026-0042",
                  consular_contact_consent=False, migration_station_days=12)  # fmt: skip
    # another INM office, or the prosecutor, may not record it
    await _institution(ctx, INM_JALISCO, "INM Jalisco", "inm", "14", parent_id=INM)
    # (another office does not even see the referral: 404, no existence oracle)
    r = await ctx.client.put(url, json=body, headers=_inm(ctx, INM_JALISCO))
    assert r.status_code == 404
    assert (await ctx.client.put(url, json=body, headers=ctx.fiscal)).status_code == 403
    r = await ctx.client.put(url, json=body, headers=inm)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["route_label"] == "Regularización por razones humanitarias"
    assert got["humanitarian_visa_number"] == "VH-2026-0042"
    assert got["migration_station_days"] == 12 and got["institution_id"] == INM
    # the visa number is never shown with identity: no name, pseudonym or age in the view
    assert not {"pseudonym", "name", "age"} & set(got)
    # the sender sees the document; SEGOB sees the route without it
    (seen,) = await _routes(ctx, ref["id"], ctx.fiscal)
    assert seen["humanitarian_visa_number"] == "VH-2026-0042"
    (audited,) = await _routes(ctx, ref["id"], ctx.h("segob_auditor", institution_id=None))
    assert audited["route"] == "humanitarian_regularisation"
    assert audited["humanitarian_visa_number"] is None
    # a Mexican person has no migration route
    mexican = next(p for p in (await ctx.client.get(
        f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)).json()["people"]
        if p["nationality"] == "MEX")  # fmt: skip
    assert mexican  # the accompanying child is listed on the referral, not among the routes
    assert len(_stored_routes()) == 1


async def test_consular_contact_only_with_consent(ctx):
    ref = await ctx.referral(people=[ADULT])
    inm = _inm(ctx)
    (route,) = await _routes(ctx, ref["id"], inm)
    url = f"/api/v1/referrals/{ref['id']}/people/{route['person_id']}/migration-route"
    r = await ctx.client.put(url, json=_route(consular_contact_on="2026-11-03"), headers=inm)
    assert r.status_code == 422
    assert r.json()["error"] == "consular_consent_required"
    assert "consular_contact_consent" in r.json()["detail"]
    assert _stored_routes() == []
    r = await ctx.client.put(
        url,
        json=_route(consular_contact_consent=True, consular_contact_on="2026-11-03"),
        headers=inm,
    )
    assert r.status_code == 200 and r.json()["consular_contact_on"] == "2026-11-03"


async def test_minor_assisted_return_needs_the_risk_assessment_first(ctx):
    ref = await ctx.referral(people=[GIRL])
    inm = _inm(ctx)
    (route,) = await _routes(ctx, ref["id"], inm)
    assert route["risk_assessment_required"] is True
    url = f"/api/v1/referrals/{ref['id']}/people/{route['person_id']}/migration-route"
    body = _route(route="assisted_return", status="requested", return_country="GTM")
    r = await ctx.client.put(url, json=body, headers=inm)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "risk_assessment_required"
    assert "revictimización" in r.json()["detail"]
    assert _stored_routes() == []  # nothing written
    r = await ctx.client.put(url, json={**body, "return_country": None}, headers=inm)
    assert r.status_code == 422 and "return_country" in r.json()["detail"]
    assessment = {"assessed_on": "2026-11-04", "summary": "Sin riesgo en la familia de origen."}
    r = await ctx.client.put(url, json={**body, "risk_assessment": assessment}, headers=inm)
    assert r.status_code == 200, r.text
    assert r.json()["risk_assessment_on"] == "2026-11-04"
    # the assessment stays recorded when the route moves on
    r = await ctx.client.put(url, json={**body, "status": "in_process"}, headers=inm)
    assert r.status_code == 200 and r.json()["risk_assessment_on"] == "2026-11-04"


async def test_discharge_by_assisted_return_names_the_country_and_follows_the_assessment(ctx):
    ref = await _admitted(ctx, people=[GIRL])
    r = await ctx.act(ref["id"], "discharge", ctx.coord, outcome="assisted_return")
    assert r.status_code == 422 and "outcome_country" in r.json()["detail"]
    r = await ctx.act(
        ref["id"], "discharge", ctx.coord, outcome="assisted_return", outcome_country="GTM"
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "risk_assessment_required"
    with db.new_session() as s:
        stored = s.get(Referral, ref["id"])
        assert stored is not None
        assert stored.status == "admitted" and stored.outcome is None
        assert stored.pending_token is None  # the claim was never taken
    inm = _inm(ctx)
    (route,) = await _routes(ctx, ref["id"], inm)
    r = await ctx.client.put(
        f"/api/v1/referrals/{ref['id']}/people/{route['person_id']}/migration-route",
        json=_route(route="assisted_return", status="completed", return_country="GTM",
                    risk_assessment={"assessed_on": "2026-11-04", "summary": "Valorada."}),
        headers=inm,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = await ctx.act(
        ref["id"], "discharge", ctx.coord, outcome="assisted_return", outcome_country="GT"
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "assisted_return" and r.json()["outcome_country"] == "GTM"


async def test_repatriated_is_read_as_assisted_return_and_mexicans_do_not_return(ctx):
    ref = await _admitted(ctx, people=[ADULT])
    r = await ctx.act(
        ref["id"], "discharge", ctx.coord, outcome="repatriated", outcome_country="HND"
    )
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "assisted_return"
    mexican = await ctx.sent_referral(people=[{**ADULT, "nationality": "MEX"}])
    await ctx.act(mexican["id"], "accept", ctx.coord)
    await ctx.act(mexican["id"], "admit", ctx.coord)
    r = await ctx.act(
        mexican["id"], "discharge", ctx.coord, outcome="assisted_return", outcome_country="HND"
    )
    assert r.status_code == 422 and r.json()["error"] == "not_foreign"
    assert FGR and NGO  # the parties of the agreement the fixtures sign


async def test_two_officers_recording_the_first_route_at_once_leave_one(ctx):
    ref = await ctx.referral(people=[ADULT])
    inm = _inm(ctx)
    (route,) = await _routes(ctx, ref["id"], inm)
    url = f"/api/v1/referrals/{ref['id']}/people/{route['person_id']}/migration-route"
    answers = await asyncio.gather(
        ctx.client.put(url, json=_route(), headers=inm),
        ctx.client.put(url, json=_route(route="asylum"), headers=inm),
    )
    assert sorted(r.status_code for r in answers) in ([200, 200], [200, 409])
    (stored,) = _stored_routes()
    assert stored.version in (1, 2)

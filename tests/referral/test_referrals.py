"""Referrals: gating by agreement, lifecycle, idempotency, races, obligations, disclosure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from referral.database import db
from referral.models import RefusedAttempt
from services.clock import clock
from tests.referral.conftest import CEAV, DIF, FGR, INM, NGO, OTHER_NGO


async def _events(ctx, type_):
    for _ in range(50):
        found = [e for e in ctx.events if e.type == type_]
        if found:
            return found
        await asyncio.sleep(0.02)
    return []


def _refused():
    with db.new_session() as s:
        return list(s.exec(select(RefusedAttempt)).all())


# --- gating -----------------------------------------------------------------------------


async def test_send_without_agreement_is_refused_and_recorded(ctx):
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403
    assert r.json()["error"] == "no_agreement"
    assert "No existe un convenio" in r.json()["detail"]
    assert [a.missing for a in _refused()] == ["agreement"]
    assert await _events(ctx, "referral.agreement.refused")
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "draft"


async def test_send_with_unsigned_agreement_is_refused(ctx):
    await ctx.agreement(sign=False)
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403 and "no está firmado" in r.json()["detail"]


async def test_send_with_expired_agreement_is_refused(ctx):
    today = clock.freeze().date()
    await ctx.agreement(valid_from=today - timedelta(days=400), valid_to=today - timedelta(days=1))
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403 and "no está vigente" in r.json()["detail"]
    assert _refused()[0].missing == "validity"


@pytest.mark.parametrize(
    ("scope", "over", "phrase"),
    [
        (
            {"populations": {"sexes": ["F"], "age_groups": ["adults"]}},
            {
                "people": [
                    {"sex": "F", "age": 18, "role": "victim", "nationality": "MEX"},
                    {"sex": "M", "age": 4, "role": "accompanying_child", "nationality": "MEX"},
                ]
            },
            "sexo M",
        ),
        (
            {"populations": {"sexes": ["F", "M"], "age_groups": ["adults"]}},
            {
                "people": [
                    {"sex": "F", "age": None, "role": "victim", "nationality": "MEX"},
                ]
            },
            "menores",
        ),
        ({"states": ["14"]}, {}, "entidad federativa 09"),
        ({"services": ["legal"]}, {"services": ["legal", "medical"]}, "atención médica"),
    ],
)
async def test_send_out_of_scope_is_refused(ctx, scope, over, phrase):
    await ctx.agreement(**scope)
    ref = await ctx.referral(**over)
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403, r.text
    assert phrase in r.json()["detail"]


async def test_agreement_between_other_parties_does_not_count(ctx):
    await ctx.agreement(parties=(FGR, OTHER_NGO))
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403


# --- lifecycle --------------------------------------------------------------------------


async def test_full_lifecycle_with_capacity_calls_and_history(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    hold = ref["hold_id"]
    assert ref["status"] == "sent" and ref["response_due_at"]
    r = await ctx.act(ref["id"], "accept", ctx.coord)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = await ctx.act(ref["id"], "in_transit", ctx.fiscal)
    assert r.json()["status"] == "in_transit"
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.json()["status"] == "admitted"
    assert ctx.capacity.holds[hold].status == "consumed"
    r = await ctx.act(ref["id"], "discharge", ctx.coord)
    assert r.status_code == 422  # outcome required
    r = await ctx.act(ref["id"], "discharge", ctx.coord, outcome="reintegrated_origin")
    body = r.json()
    assert body["status"] == "discharged" and body["outcome"] == "reintegrated_origin"
    assert ("discharge", ("pool-1", 1)) in ctx.capacity.calls
    assert [h["action"] for h in body["history"]] == [
        "create",
        "send",
        "accept",
        "in_transit",
        "admit",
        "discharge",
    ]
    assert body["history"][2]["actor"] == "coord"
    assert body["version"] == 6
    events = await _events(ctx, "referral.referral.discharge")
    payload = events[0].payload
    (person,) = payload["people"]
    assert {k: person[k] for k in ("sex", "age_group", "nationality", "role")} == {
        "sex": "F",
        "age_group": "adults",
        "nationality": "MEX",
        "role": "victim",
    }
    # The CNDH variables and the answer deadline travel with the event (statistics).
    assert person["age_band"] == "18-59"
    assert {"state_of_origin", "vulnerable_groups", "offences"} <= set(person)
    assert payload["response_due_at"] == ref["response_due_at"].replace("Z", "+00:00")
    assert "name" not in str(payload) and "pseudonym" not in str(payload)


async def test_impossible_transitions_are_409_with_a_sentence(ctx):
    await ctx.agreement()
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 409 and "borrador" in r.json()["detail"]
    await ctx.act(ref["id"], "send", ctx.fiscal)
    r = await ctx.act(ref["id"], "discharge", ctx.coord, outcome="other")
    assert r.status_code == 409
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 409


async def test_decline_needs_a_reason_and_releases_the_hold(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    r = await ctx.act(ref["id"], "decline", ctx.coord)
    assert r.status_code == 422
    r = await ctx.act(ref["id"], "decline", ctx.coord, reason="Sin personal esta noche")
    assert r.status_code == 200 and r.json()["decline_reason"] == "Sin personal esta noche"
    assert ctx.capacity.holds[ref["hold_id"]].status == "released"


async def test_cancel_by_either_side_before_admission_only(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    r = await ctx.act(ref["id"], "cancel", ctx.coord, reason="duplicada")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert ctx.capacity.holds[ref["hold_id"]].status == "released"
    ref = await ctx.sent_referral()
    await ctx.act(ref["id"], "accept", ctx.coord)
    await ctx.act(ref["id"], "admit", ctx.coord)
    r = await ctx.act(ref["id"], "cancel", ctx.fiscal)
    assert r.status_code == 409


async def test_roles_and_institutions_are_checked(ctx):
    await ctx.agreement()
    r = await ctx.client.post("/api/v1/referrals", json=ctx.referral_body(), headers=ctx.coord)
    assert r.status_code == 403
    r = await ctx.client.post(
        "/api/v1/referrals",
        json=ctx.referral_body(),
        headers=ctx.h("prosecutor", institution_id=OTHER_NGO),
    )
    assert r.status_code == 403
    ref = await ctx.sent_referral()
    r = await ctx.act(ref["id"], "accept", ctx.fiscal)
    assert r.status_code == 403
    # Another NGO may not even see it: the same 404 as for a referral that does not exist.
    r = await ctx.act(ref["id"], "accept", ctx.h("shelter_coordinator", institution_id=OTHER_NGO))
    assert r.status_code == 404 and r.json()["error"] == "referral_not_found"
    r = await ctx.client.get("/api/v1/referrals", headers=ctx.h("observer"))
    assert r.status_code == 403
    r = await ctx.client.get(
        f"/api/v1/referrals/{ref['id']}",
        headers=ctx.h("shelter_coordinator", institution_id=OTHER_NGO),
    )
    assert r.status_code == 404


async def test_if_match_is_honoured(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    r = await ctx.client.post(
        f"/api/v1/referrals/{ref['id']}/accept", headers={**ctx.coord, "If-Match": "1"}
    )
    assert r.status_code == 412
    r = await ctx.client.post(
        f"/api/v1/referrals/{ref['id']}/accept",
        headers={**ctx.coord, "If-Match": str(ref["version"])},
    )
    assert r.status_code == 200


async def test_double_accept_race_one_wins(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    other = ctx.h("institution_admin", institution_id=NGO, sub="admin-ngo")
    r1, r2 = await asyncio.gather(
        ctx.act(ref["id"], "accept", ctx.coord), ctx.act(ref["id"], "accept", other)
    )
    assert sorted([r1.status_code, r2.status_code]) == [200, 409]
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    assert [h["action"] for h in r.json()["history"]].count("accept") == 1


# --- creation, idempotency, input ---------------------------------------------------------


async def test_idempotency_key_answers_the_same_referral(ctx):
    body = ctx.referral_body()
    headers = {**ctx.fiscal, "Idempotency-Key": "rescate-42"}
    r1 = await ctx.client.post("/api/v1/referrals", json=body, headers=headers)
    r2 = await ctx.client.post("/api/v1/referrals", json=body, headers=headers)
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json() == r2.json()
    r = await ctx.client.get("/api/v1/referrals", headers=ctx.fiscal)
    assert len(r.json()) == 1
    r3 = await ctx.client.post(
        "/api/v1/referrals", json={**body, "urgency": "urgent"}, headers=headers
    )
    assert r3.status_code == 422 and r3.json()["error"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "person",
    [
        {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX", "eye_colour": "x"},
        {"sex": "Q", "age": 30, "role": "victim", "nationality": "MEX"},
        {"sex": "F", "age": 30, "role": "boss", "nationality": "MEX"},
        {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX", "offences": ["art10-XII"]},
        {"sex": "F", "age": 30, "role": "victim", "nationality": "mexico"},
    ],
)
async def test_bad_people_are_422(ctx, person):
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(people=[person]), headers=ctx.fiscal
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation_error"


async def test_consent_is_required_and_unknown_top_fields_refused(ctx):
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(consent={"given": False}), headers=ctx.fiscal
    )
    assert r.status_code == 422
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(priority="high"), headers=ctx.fiscal
    )
    assert r.status_code == 422


# --- obligations --------------------------------------------------------------------------


async def test_obligations_for_minor_foreigner_and_victim(ctx):
    ref = await ctx.referral(
        people=[
            {"sex": "F", "age": 15, "role": "victim", "nationality": "HND"},
            {"sex": "M", "age": None, "role": "witness", "nationality": "MEX"},
        ]
    )
    kinds = {o["kind"]: o for o in ref["obligations"]}
    assert set(kinds) == {
        "dif_child_protection",
        "inm_migration_status",
        "inm_child_protection",
        "ceav_registration",
    }
    assert kinds["inm_child_protection"]["institution_id"] == INM
    assert kinds["dif_child_protection"]["institution_id"] == DIF
    assert kinds["inm_migration_status"]["institution_id"] == INM
    assert kinds["inm_migration_status"]["humanitarian_visa_status"] == "not_started"
    assert kinds["ceav_registration"]["institution_id"] == CEAV
    assert all(o["status"] == "pending" for o in ref["obligations"])
    dif = ctx.h("dif_officer", institution_id=DIF)
    # the DIF officer sees the referral, de-identified, and acknowledges its obligation
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=dif)
    assert r.status_code == 200 and r.json()["deidentified"] is True
    url = f"/api/v1/referrals/{ref['id']}/obligations"
    r = await ctx.client.post(
        f"{url}/{kinds['dif_child_protection']['id']}/fulfil",
        json={"note": "Procuraduría notificada"},
        headers=ctx.h("inm_officer", institution_id=INM),
    )
    assert r.status_code == 403
    r = await ctx.client.post(
        f"{url}/{kinds['dif_child_protection']['id']}/fulfil",
        json={"note": "Procuraduría notificada"},
        headers=dif,
    )
    assert r.status_code == 200 and r.json()["status"] == "fulfilled"
    r = await ctx.client.post(
        f"{url}/{kinds['inm_migration_status']['id']}/fulfil",
        json={"humanitarian_visa_status": "requested"},
        headers=ctx.h("inm_officer", institution_id=INM),
    )
    assert r.json()["humanitarian_visa_status"] == "requested"


async def test_mexican_adult_witness_brings_no_obligation(ctx):
    ref = await ctx.referral(
        people=[{"sex": "F", "age": 40, "role": "witness", "nationality": "MEX"}]
    )
    assert ref["obligations"] == []


# --- disclosure ---------------------------------------------------------------------------


async def test_disclosure_rules(ctx):
    await ctx.agreement()
    body = ctx.referral_body(
        people=[
            {
                "sex": "F",
                "age": 24,
                "role": "victim",
                "nationality": "MEX",
                "name": "María P.",
                "pseudonym": "V-1",
                "state_of_origin": "07",
            }
        ],
        case_reference="FED/FEVIMTRA/123/2026",
    )
    r = await ctx.client.post("/api/v1/referrals", json=body, headers=ctx.fiscal)
    ref = r.json()
    assert "María" not in r.text
    await ctx.act(ref["id"], "send", ctx.fiscal)
    # before acceptance: the receiver sees a de-identified profile, no names, no address
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    view = r.json()
    assert view["deidentified"] is True
    assert view["people"][0]["age"] is None and view["people"][0]["age_group"] == "adults"
    assert view["case_reference"] is None and view["people"][0]["pseudonym"] is None
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.coord)
    assert r.status_code == 409
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=ctx.fiscal)
    assert r.status_code == 409
    await ctx.act(ref["id"], "accept", ctx.coord)
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    assert r.json()["deidentified"] is False and r.json()["people"][0]["age"] == 24
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.coord)
    assert r.status_code == 200 and r.json()[0]["name"] == "María P."
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.fiscal)
    assert r.status_code == 403
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=ctx.fiscal)
    assert r.status_code == 200 and r.json()["address"] == "Calle Secreta 1"
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=ctx.coord)
    assert r.status_code == 403
    assert await _events(ctx, "referral.disclosure.identity")
    address_events = await _events(ctx, "referral.disclosure.address")
    assert "Calle" not in str(address_events[0].payload)
    # auditors read everything, de-identified
    r = await ctx.client.get("/api/v1/referrals", headers=ctx.h("segob_auditor"))
    assert r.status_code == 200 and all(x["deidentified"] for x in r.json())


async def test_witness_protection_hides_identities_from_receiver(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral(
        witness_protection=True,
        people=[{"sex": "F", "age": 30, "role": "witness", "nationality": "MEX", "name": "X"}],
    )
    assert any(o["kind"] == "witness_protection" for o in ref["obligations"])
    await ctx.act(ref["id"], "accept", ctx.coord)
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.coord)
    assert r.status_code == 403 and "protección de testigos" in r.json()["detail"]


async def test_send_checks_the_facility_and_the_hold(ctx):
    await ctx.agreement()
    ctx.capacity.operators["fac-other"] = OTHER_NGO
    ref = await ctx.referral(facility_id="fac-other")
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 422 and r.json()["error"] == "facility_not_operated_by_receiver"
    ref = await ctx.referral()
    ctx.capacity.holds[ref["hold_id"]].status = "expired"
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 409 and r.json()["error"] == "hold_not_active"
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "draft"


async def test_unregistered_facility_refused_when_the_setting_says_so(ctx, monkeypatch):
    from services.settings import get_settings

    await ctx.agreement()
    ref = await ctx.referral()
    monkeypatch.setattr(get_settings(), "unregistered_may_receive_referrals", False)
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 409 and r.json()["error"] == "facility_not_registered"
    monkeypatch.setattr(get_settings(), "unregistered_may_receive_referrals", True)
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 200 and r.json()["status"] == "sent"

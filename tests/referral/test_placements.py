"""Issue 17 (ADR 0021): urgent placement without an agreement, onward transfers, and the
detection source of every referral."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from referral.database import db
from referral.models import PersonIdentity, Referral, ReferralPerson
from services.settings import get_settings
from tests.referral.conftest import FGR, NGO, OTHER_NGO, Ctx

JUSTIFICATION = "Rescate a las 2 a. m.; no hay convenio con ningún refugio de la zona."


def _stored() -> list[Referral]:
    with db.new_session() as s:
        return list(s.exec(select(Referral)).all())


async def _event(ctx: Ctx, type_: str) -> Any:
    for _ in range(200):
        found = [e for e in ctx.events if e.type == type_]
        if found:
            return found[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {type_} event")


def _urgent(**over: Any) -> dict[str, Any]:
    return {
        "urgency": "urgent",
        "without_agreement": True,
        "without_agreement_justification": JUSTIFICATION,
        **over,
    }


@pytest.fixture
def switched_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CANALIZA_URGENT_WITHOUT_AGREEMENT", "0")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("CANALIZA_URGENT_WITHOUT_AGREEMENT")
    get_settings.cache_clear()


# --- urgent placement without an agreement --------------------------------------------------


async def test_an_urgent_referral_without_agreement_is_sent_flagged_and_announced(ctx: Ctx):
    ref = await ctx.referral(**_urgent())
    assert ref["without_agreement"] is True
    assert ref["without_agreement_justification"] == JUSTIFICATION
    sent = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["status"] == "sent" and body["agreement_id"] is None
    assert body["without_agreement"] is True
    event = await _event(ctx, "referral.placement.without_agreement")
    assert event.payload["sending_institution_id"] == FGR
    assert event.payload["receiving_institution_id"] == NGO
    assert "justification" not in str(event.payload)
    # The receiving facility may still decline.
    declined = await ctx.act(ref["id"], "decline", ctx.coord, reason="Sin cupo de seguridad.")
    assert declined.status_code == 200 and declined.json()["status"] == "declined"


async def test_a_normal_referral_without_agreement_is_still_refused(ctx: Ctx):
    ref = await ctx.referral()
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 403 and r.json()["error"] == "no_agreement"


@pytest.mark.parametrize(
    ("over", "code", "field"),
    [
        ({"without_agreement_justification": None}, "justification_required", "justification"),
        ({"without_agreement_justification": "   "}, "justification_required", "justification"),
        ({"urgency": "normal"}, "urgency_required", "urgency"),
        ({"agreement_id": "x"}, "agreement_with_without_agreement", "agreement_id"),
    ],
)
async def test_bad_urgent_requests_are_refused_in_spanish_and_nothing_is_written(
    ctx: Ctx, over: dict[str, Any], code: str, field: str
):
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(**_urgent(**over)), headers=ctx.fiscal
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == code
    assert field in r.json()["detail"]
    assert _stored() == []


async def test_only_prosecutors_place_without_agreement(ctx: Ctx):
    from tests.referral.conftest import DIF

    body = ctx.referral_body(**_urgent(sending_institution_id=DIF))
    r = await ctx.client.post(
        "/api/v1/referrals", json=body, headers=ctx.h("dif_officer", institution_id=DIF)
    )
    assert r.status_code == 403, r.text
    assert _stored() == []


async def test_a_deployment_may_turn_it_off(ctx: Ctx, switched_off: None):
    r = await ctx.client.post(
        "/api/v1/referrals", json=ctx.referral_body(**_urgent()), headers=ctx.fiscal
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "urgent_without_agreement_disabled"
    assert "convenio" in r.json()["detail"]
    assert _stored() == []


async def test_switched_off_after_creation_the_send_is_refused(ctx: Ctx, monkeypatch):
    ref = await ctx.referral(**_urgent())
    monkeypatch.setenv("CANALIZA_URGENT_WITHOUT_AGREEMENT", "false")
    get_settings.cache_clear()
    try:
        r = await ctx.act(ref["id"], "send", ctx.fiscal)
    finally:
        monkeypatch.delenv("CANALIZA_URGENT_WITHOUT_AGREEMENT")
        get_settings.cache_clear()
    assert r.status_code == 403 and r.json()["error"] == "no_agreement"


async def test_when_an_agreement_binds_it_travels_along_it_unflagged(ctx: Ctx):
    agreement = await ctx.agreement()
    ref = await ctx.referral(**_urgent())
    sent = (await ctx.act(ref["id"], "send", ctx.fiscal)).json()
    assert sent["agreement_id"] == agreement["id"] and sent["without_agreement"] is False
    await _event(ctx, "referral.referral.send")
    assert "referral.placement.without_agreement" not in [e.type for e in ctx.events]


async def test_both_institutions_admins_are_alerted_until_an_agreement_is_signed(ctx: Ctx):
    ref = await ctx.referral(**_urgent())
    await ctx.act(ref["id"], "send", ctx.fiscal)
    fgr_admin = ctx.h("institution_admin", institution_id=FGR)
    ngo_admin = ctx.h("institution_admin", institution_id=NGO)
    other_admin = ctx.h("institution_admin", institution_id=OTHER_NGO)
    fgr = (await ctx.client.get("/api/v1/agreement-alerts", headers=fgr_admin)).json()
    ngo = (await ctx.client.get("/api/v1/agreement-alerts", headers=ngo_admin)).json()
    other = (await ctx.client.get("/api/v1/agreement-alerts", headers=other_admin)).json()
    assert [(a["other_institution_id"], a["sent_by_us"], a["received_by_us"]) for a in fgr] == [
        (NGO, 1, 0)
    ]
    assert [(a["other_institution_id"], a["sent_by_us"], a["received_by_us"]) for a in ngo] == [
        (FGR, 0, 1)
    ]
    assert other == []
    refused = await ctx.client.get("/api/v1/agreement-alerts", headers=ctx.fiscal)
    assert refused.status_code == 403
    await ctx.agreement()  # formalised: the alert goes
    assert (await ctx.client.get("/api/v1/agreement-alerts", headers=fgr_admin)).json() == []


# --- detection source -----------------------------------------------------------------------


async def test_detection_source_is_recorded_labelled_and_null_is_not_recorded(ctx: Ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral(detection_source="hotline")
    assert ref["detection_source"] == "hotline"
    assert ref["detection_source_label"].startswith("Línea telefónica")
    sent = await _event(ctx, "referral.referral.send")
    assert sent.payload["detection_source"] == "hotline"
    unknown = await ctx.referral(detection_source=None)
    assert unknown["detection_source"] is None and unknown["detection_source_label"] == "S.I."
    bad = await ctx.client.post(
        "/api/v1/referrals",
        json=ctx.referral_body(detection_source="rumour"),
        headers=ctx.fiscal,
    )
    assert bad.status_code == 422 and "detection_source" in bad.json()["detail"]


# --- onward transfer ------------------------------------------------------------------------


async def _admitted(ctx: Ctx, **over: Any) -> dict[str, Any]:
    await ctx.agreement()
    ref = await ctx.sent_referral(
        detection_source="operation",
        people=[
            {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX", "name": "Ana"},
            {"sex": "M", "age": 4, "role": "accompanying_child", "nationality": "MEX"},
        ],
        **over,
    )
    for action in ("accept", "admit"):
        r = await ctx.act(ref["id"], action, ctx.coord)
        assert r.status_code == 200, r.text
    return r.json()


def _onward_body(ctx: Ctx, previous_id: str, **over: Any) -> dict[str, Any]:
    ctx.capacity.operators["fac-2"] = OTHER_NGO
    body: dict[str, Any] = {
        "sending_institution_id": NGO,
        "receiving_institution_id": OTHER_NGO,
        "facility_id": "fac-2",
        "hold_id": ctx.capacity.new_hold(2, institution_id=NGO, facility_id="fac-2"),
        "previous_referral_id": previous_id,
        "consent": {"given": True},
        "urgency": "normal",
    }
    body.update(over)
    return body


async def test_a_shelter_sends_an_admitted_person_onward_as_the_same_people(ctx: Ctx):
    first = await _admitted(ctx)
    await ctx.agreement(parties=(NGO, OTHER_NGO))
    r = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, first["id"]), headers=ctx.coord
    )
    assert r.status_code == 201, r.text
    onward = r.json()
    assert onward["previous_referral_id"] == first["id"]
    assert onward["detection_source"] == "operation"  # the same victims
    assert [(p["sex"], p["role"]) for p in onward["people"]] == [
        ("F", "victim"),
        ("M", "accompanying_child"),
    ]
    with db.new_session() as s:
        new_people = s.exec(
            select(ReferralPerson).where(ReferralPerson.referral_id == onward["id"])
        ).all()
        old_people = s.exec(
            select(ReferralPerson).where(ReferralPerson.referral_id == first["id"])
        ).all()
        # The same victims: the same pseudonymous keys, so statistics count them once.
        assert {p.person_key for p in new_people} == {p.person_key for p in old_people}
        assert all(p.person_key for p in new_people)
        old = {
            p.id
            for p in s.exec(select(ReferralPerson).where(ReferralPerson.referral_id == first["id"]))
        }
        assert {p.previous_person_id for p in new_people} == old
        names = [s.get(PersonIdentity, p.id) for p in new_people]
        assert [n.full_name for n in names if n] == ["Ana"]
    sent = await ctx.act(onward["id"], "send", ctx.coord)
    assert sent.status_code == 200, sent.text
    other_coord = ctx.h("shelter_coordinator", institution_id=OTHER_NGO, sub="coord2")
    accepted = await ctx.act(onward["id"], "accept", other_coord)
    assert accepted.status_code == 200, accepted.text
    # One timeline, seen from either end.
    for rid, headers in ((onward["id"], other_coord), (first["id"], ctx.fiscal)):
        path = await ctx.client.get(f"/api/v1/referrals/{rid}/path", headers=headers)
        assert path.status_code == 200, path.text
        assert [(s["id"], s["previous_referral_id"]) for s in path.json()] == [
            (first["id"], None),
            (onward["id"], first["id"]),
        ]
        assert "people" not in path.json()[0]


async def test_an_onward_transfer_may_be_urgent_without_agreement(ctx: Ctx):
    first = await _admitted(ctx)
    body = _onward_body(ctx, first["id"], **_urgent())
    r = await ctx.client.post("/api/v1/referrals", json=body, headers=ctx.coord)
    assert r.status_code == 201, r.text
    sent = await ctx.act(r.json()["id"], "send", ctx.coord)
    assert sent.status_code == 200 and sent.json()["without_agreement"] is True


async def test_transferring_a_person_who_is_not_admitted_is_409_and_writes_nothing(ctx: Ctx):
    await ctx.agreement()
    await ctx.agreement(parties=(NGO, OTHER_NGO))
    accepted = await ctx.sent_referral()
    await ctx.act(accepted["id"], "accept", ctx.coord)
    before = len(_stored())
    r = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, accepted["id"]), headers=ctx.coord
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "not_admitted"
    assert "previous_referral_id" in r.json()["detail"] and "ingresada" in r.json()["detail"]
    assert len(_stored()) == before


async def test_only_the_admitting_shelter_transfers_and_only_admitted_people(ctx: Ctx):
    first = await _admitted(ctx)
    # Another shelter cannot transfer someone it did not admit (as if it did not exist).
    other_coord = ctx.h("shelter_coordinator", institution_id=OTHER_NGO, sub="coord2")
    body = _onward_body(
        ctx,
        first["id"],
        sending_institution_id=OTHER_NGO,
        receiving_institution_id=NGO,
        facility_id="fac-1",
        hold_id=ctx.capacity.new_hold(institution_id=OTHER_NGO, facility_id="fac-1"),
    )
    r = await ctx.client.post("/api/v1/referrals", json=body, headers=other_coord)
    assert r.status_code == 404, r.text
    assert "previous_referral_id" in r.json()["detail"]
    # A coordinator never originates a referral of her own.
    plain = ctx.referral_body(sending_institution_id=NGO, receiving_institution_id=OTHER_NGO)
    r = await ctx.client.post("/api/v1/referrals", json=plain, headers=ctx.coord)
    assert r.status_code == 403 and "previous_referral_id" in r.json()["detail"]
    # The people are those of the referral before: naming them again is refused.
    again = _onward_body(
        ctx, first["id"], people=[{"sex": "F", "age": 30, "role": "victim", "nationality": None}]
    )
    r = await ctx.client.post("/api/v1/referrals", json=again, headers=ctx.coord)
    assert r.status_code == 422 and "people" in r.json()["detail"]


async def test_one_transfer_at_a_time(ctx: Ctx):
    first = await _admitted(ctx)
    await ctx.agreement(parties=(NGO, OTHER_NGO))
    ok = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, first["id"]), headers=ctx.coord
    )
    assert ok.status_code == 201
    twice = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, first["id"]), headers=ctx.coord
    )
    assert twice.status_code == 409 and twice.json()["error"] == "transfer_in_progress"


async def test_the_path_keeps_a_declined_transfer_as_a_step_tried(ctx: Ctx):
    first = await _admitted(ctx)
    await ctx.agreement(parties=(NGO, OTHER_NGO))
    other_coord = ctx.h("shelter_coordinator", institution_id=OTHER_NGO, sub="coord2")
    tried = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, first["id"]), headers=ctx.coord
    )
    await ctx.act(tried.json()["id"], "send", ctx.coord)
    declined = await ctx.act(tried.json()["id"], "decline", other_coord, reason="Sin cupo.")
    assert declined.status_code == 200, declined.text
    again = await ctx.client.post(
        "/api/v1/referrals", json=_onward_body(ctx, first["id"]), headers=ctx.coord
    )
    assert again.status_code == 201, again.text  # the declined one is no longer under way
    for rid in (tried.json()["id"], again.json()["id"], first["id"]):
        path = await ctx.client.get(f"/api/v1/referrals/{rid}/path", headers=ctx.coord)
        assert [s["id"] for s in path.json()] == [
            first["id"],
            tried.json()["id"],
            again.json()["id"],
        ]

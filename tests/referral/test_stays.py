"""Stays against the facility's maximum, extensions, follow-ups, services provided (ADR 0022)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from referral import stays
from referral.database import db
from referral.models import FollowUp, Referral, ServiceProvided, StayExtension
from services.clock import utcnow
from tests.referral.conftest import OTHER_NGO

EXTENSION = {
    "days": 30,
    "reason": "psychological_instability",
    "detail": "Persiste la inestabilidad psicológica; dictamen del área clínica.",
    "approved_by": "Dirección del refugio",
}


async def _admitted(ctx: Any, **over: Any) -> dict[str, Any]:
    await ctx.agreement()
    ref = await ctx.sent_referral(**over)
    assert (await ctx.act(ref["id"], "accept", ctx.coord)).status_code == 200
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _stay(ctx: Any, ref_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = await ctx.client.get(f"/api/v1/referrals/{ref_id}/stay", headers=headers or ctx.coord)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _rows(model: type) -> list[Any]:
    with db.new_session() as s:
        return list(s.exec(select(model)).all())


def test_alert_before_at_and_past_the_maximum():
    assert stays.stay_alert(10, 90) == "none"
    assert stays.stay_alert(90 - stays.WARNING_DAYS, 90) == "approaching"
    assert stays.stay_alert(90, 90) == "reached"
    assert stays.stay_alert(91, 90) == "exceeded"
    assert stays.stay_alert(500, None) == "none"  # a facility without a maximum


async def test_stay_counter_against_the_facility_maximum_and_its_extensions(ctx):
    ctx.capacity.max_stay_days["fac-1"] = 10
    ref = await _admitted(ctx)
    stay = await _stay(ctx, ref["id"])
    assert stay["days"] == 0 and stay["max_stay_days"] == 10 and stay["days_left"] == 10
    assert stay["alert"] == "approaching"  # within the warning window already
    url = f"/api/v1/referrals/{ref['id']}/stay/extensions"
    r = await ctx.client.post(url, json=EXTENSION, headers=ctx.coord)
    assert r.status_code == 201, r.text
    assert r.json()["reason_label"] == "Inestabilidad psicológica"
    stay = await _stay(ctx, ref["id"], ctx.fiscal)  # the sender sees it too
    assert stay["extended_days"] == 30 and stay["limit_days"] == 40 and stay["alert"] == "none"
    # a month later than the limit, the stay is past it
    with db.new_session() as s:
        referral = s.get(Referral, ref["id"])
        assert referral is not None
        later = stays.stay_view(s, referral, max_stay_days=10, now=utcnow() + timedelta(days=41))
    assert later.days == 41 and later.alert == "exceeded" and later.days_left == -1


async def test_an_extension_without_reason_or_approver_writes_nothing(ctx):
    ref = await _admitted(ctx)
    url = f"/api/v1/referrals/{ref['id']}/stay/extensions"
    for missing, field in (("reason", "reason"), ("detail", "detail"), ("approved_by", "approved_by")):  # fmt: skip
        body = {k: v for k, v in EXTENSION.items() if k != missing}
        r = await ctx.client.post(url, json=body, headers=ctx.coord)
        assert r.status_code == 422, r.text
        assert field in r.json()["detail"]
    r = await ctx.client.post(url, json={**EXTENSION, "reason": "boredom"}, headers=ctx.coord)
    assert r.status_code == 422
    # only the receiving institution extends a stay
    for headers in (ctx.fiscal, ctx.h("shelter_coordinator", institution_id=OTHER_NGO)):
        r = await ctx.client.post(url, json=EXTENSION, headers=headers)
        assert r.status_code in (403, 404)
    assert _rows(StayExtension) == []


async def test_follow_ups_after_discharge_with_their_results(ctx):
    ref = await _admitted(ctx)
    url = f"/api/v1/referrals/{ref['id']}/stay/follow-ups"
    today = utcnow().date()
    r = await ctx.client.post(url, json={"due_on": str(today)}, headers=ctx.coord)
    assert r.status_code == 409  # not discharged yet
    r = await ctx.act(ref["id"], "discharge", ctx.coord, outcome="reintegrated_origin")
    assert r.status_code == 200
    r = await ctx.client.post(
        url, json={"due_on": str(today - timedelta(days=3))}, headers=ctx.coord
    )
    assert r.status_code == 422 and "due_on" in r.json()["detail"]
    planned = []
    for months in (1, 3):
        due = today + timedelta(days=30 * months)
        r = await ctx.client.post(url, json={"due_on": str(due)}, headers=ctx.coord)
        assert r.status_code == 201, r.text
        planned.append(r.json())
    assert planned[0]["result"] is None and planned[0]["overdue"] is False
    r = await ctx.client.post(
        f"{url}/{planned[0]['id']}/result",
        json={"done_on": str(today), "result": "needs_support", "note": "Pide apoyo laboral."},
        headers=ctx.coord,
    )
    assert r.status_code == 200, r.text
    assert r.json()["result_label"] == "Localizada, requiere apoyo"
    r = await ctx.client.post(
        f"{url}/{planned[1]['id']}/result",
        json={"done_on": str(today + timedelta(days=2)), "result": "stable"},
        headers=ctx.coord,
    )
    assert r.status_code == 422 and "done_on" in r.json()["detail"]
    stay = await _stay(ctx, ref["id"])
    assert [f["result"] for f in stay["follow_ups"]] == ["needs_support", None]
    # the standard schedule (one, three, six months) adds only the contacts not yet planned
    r = await ctx.client.post(f"{url}/schedule", headers=ctx.coord)
    assert r.status_code == 201, r.text
    assert [f["due_on"] for f in r.json()] == [str(today + timedelta(days=180))]
    r = await ctx.client.post(f"{url}/schedule", headers=ctx.coord)
    assert r.status_code == 201 and r.json() == []  # nothing planned twice
    assert stay["alert"] == "none" and stay["days"] == 0
    assert len(_rows(FollowUp)) == 3


async def test_services_provided_per_person_during_the_stay(ctx):
    ref = await _admitted(
        ctx,
        people=[
            {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX"},
            {"sex": "M", "age": 4, "role": "accompanying_child", "nationality": "MEX"},
        ],
    )
    people = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    assert people.status_code == 200
    url = f"/api/v1/referrals/{ref['id']}/stay/services"
    stay = await _stay(ctx, ref["id"])
    assert stay["services"] == []
    ids = [p["person_id"] for p in stay["people"]]
    assert [p["role"] for p in stay["people"]] == ["victim", "accompanying_child"]
    today = str(utcnow().date())
    for person, service in ((ids[0], "legal"), (ids[0], "psychological"), (ids[1], "education")):
        r = await ctx.client.post(
            url, json={"person_id": person, "service": service, "provided_on": today},
            headers=ctx.coord,
        )  # fmt: skip
        assert r.status_code == 201, r.text
    r = await ctx.client.post(
        url, json={"person_id": ids[0], "service": "job_training", "provided_on": "2001-01-01"},
        headers=ctx.coord,
    )  # fmt: skip
    assert r.status_code == 422 and "provided_on" in r.json()["detail"]
    r = await ctx.client.post(
        url, json={"person_id": "nobody", "service": "legal", "provided_on": today},
        headers=ctx.coord,
    )  # fmt: skip
    assert r.status_code == 422 and "person_id" in r.json()["detail"]
    stay = await _stay(ctx, ref["id"])
    assert [(s["position"], s["service"]) for s in stay["services"]] == [
        (0, "legal"), (0, "psychological"), (1, "education"),
    ]  # fmt: skip
    assert len(_rows(ServiceProvided)) == 3

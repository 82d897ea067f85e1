"""Answer deadlines (frozen clock, no sleeps) and the outcomes report."""

from __future__ import annotations

from datetime import timedelta

from referral import deadlines
from referral.database import db
from referral.flows import run_expiry
from services.clock import clock
from tests.referral.conftest import FGR


async def test_unanswered_urgent_referral_expires_after_two_hours(ctx):
    clock.freeze()
    await ctx.agreement()
    urgent = await ctx.sent_referral(urgency="urgent")
    normal = await ctx.sent_referral(urgency="normal")
    clock.advance(timedelta(hours=1, minutes=59))
    assert await run_expiry(ctx.runtime) == []
    clock.advance(timedelta(minutes=2))
    # past the deadline the receiver can no longer answer, even before the expiry round
    r = await ctx.act(urgent["id"], "accept", ctx.coord)
    assert r.status_code == 409 and r.json()["error"] == "response_deadline_passed"
    assert await run_expiry(ctx.runtime) == [urgent["hold_id"]]
    assert ctx.capacity.holds[urgent["hold_id"]].status == "released"
    r = await ctx.client.get(f"/api/v1/referrals/{urgent['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "expired"
    assert r.json()["history"][-1]["actor"] == "system"
    r = await ctx.client.get(f"/api/v1/referrals/{urgent['id']}/escalations", headers=ctx.fiscal)
    offer = r.json()[0]["offer"]
    assert offer["exclude_facility_ids"] == ["fac-1"]
    # the sender is offered the next eligible facility, never the one that did not answer
    assert offer["action"] == "offer_next_facility"
    assert [c["facility_id"] for c in offer["candidates"]] == ["fac-2"]
    r = await ctx.client.get(f"/api/v1/referrals/{normal['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "sent"
    # too late to accept an expired referral
    r = await ctx.act(urgent["id"], "accept", ctx.coord)
    assert r.status_code == 409
    clock.advance(timedelta(hours=23))
    assert await run_expiry(ctx.runtime) == [normal["hold_id"]]


async def test_expire_overdue_is_a_plain_function(ctx):
    clock.freeze()
    await ctx.agreement()
    ref = await ctx.sent_referral(urgency="normal")
    with db.new_session(write=True) as session:
        assert deadlines.expire_overdue(session, clock.now() + timedelta(hours=23)) == []
        expired = deadlines.expire_overdue(session, clock.now() + timedelta(hours=25))
        session.commit()
    assert expired == [(ref["id"], ref["hold_id"])]


async def test_outcomes_report_has_a_no_information_line(ctx):
    clock.freeze()
    await ctx.agreement()
    done = await ctx.sent_referral()
    await ctx.act(done["id"], "accept", ctx.coord)
    await ctx.act(done["id"], "admit", ctx.coord)
    await ctx.act(done["id"], "discharge", ctx.coord, outcome="left_voluntarily")
    await ctx.sent_referral()  # will be open past its deadline
    declined = await ctx.sent_referral()
    await ctx.act(declined["id"], "decline", ctx.coord, reason="Sin cupo")
    clock.advance(timedelta(hours=30))
    r = await ctx.client.get("/api/v1/referrals/reports/outcomes", headers=ctx.h("segob_auditor"))
    assert r.status_code == 200
    lines = {(x["sending_institution_id"], x["outcome"]): x["count"] for x in r.json()}
    assert lines == {
        (FGR, "left_voluntarily"): 1,
        (FGR, "no_information"): 1,
        (FGR, "declined"): 1,
    }
    r = await ctx.client.get("/api/v1/referrals/reports/outcomes", headers=ctx.coord)
    assert r.status_code == 403

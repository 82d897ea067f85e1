"""The demo seed: the contract's demo users can send a referral along a signed agreement."""

from __future__ import annotations

from canaliza.demo import CASA_MERCEDES, DEMO_INSTITUTIONS, FGR
from referral import demo
from referral.database import db


async def test_demo_seed_is_idempotent_and_lets_the_demo_prosecutor_send(ctx):
    with db.new_session(write=True) as session:
        first = demo.load_demo(session)
        session.commit()
    with db.new_session(write=True) as session:
        assert demo.load_demo(session) == 0
        session.commit()
    assert first == len(DEMO_INSTITUTIONS) + 1
    fiscal = ctx.h("prosecutor", institution_id=FGR.id, sub="fiscal")
    ctx.capacity.operators["fac-1"] = CASA_MERCEDES.id
    r = await ctx.client.post(
        "/api/v1/referrals",
        json=ctx.referral_body(
            sending_institution_id=FGR.id,
            receiving_institution_id=CASA_MERCEDES.id,
        ),
        headers=fiscal,
    )
    assert r.status_code == 201, r.text
    r = await ctx.client.post(f"/api/v1/referrals/{r.json()['id']}/send", headers=fiscal)
    assert r.status_code == 200, r.text

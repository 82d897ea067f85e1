"""A referral may name the agreement it travels along; the service checks and keeps it."""

from __future__ import annotations

from sqlmodel import select

from referral.database import db
from referral.models import Referral
from tests.referral.conftest import FGR, NGO, OTHER_NGO


def _stored_referrals() -> list[Referral]:
    with db.new_session() as s:
        return list(s.exec(select(Referral)).all())


async def test_a_chosen_agreement_is_the_one_recorded_and_used(ctx):
    await ctx.agreement()  # another binding agreement the service could have picked itself
    chosen = await ctx.agreement()
    ref = await ctx.referral(agreement_id=chosen["id"])
    assert ref["agreement_id"] == chosen["id"]
    r = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "sent" and r.json()["agreement_id"] == chosen["id"]
    assert [x.agreement_id for x in _stored_referrals()] == [chosen["id"]]


async def test_without_a_choice_the_send_records_the_binding_agreement(ctx):
    agreement = await ctx.agreement()
    ref = await ctx.referral()
    assert ref["agreement_id"] is None
    sent = await ctx.act(ref["id"], "send", ctx.fiscal)
    assert sent.status_code == 200 and sent.json()["agreement_id"] == agreement["id"]


async def _refused_with(ctx, agreement_id: str, phrase: str) -> None:
    r = await ctx.client.post(
        "/api/v1/referrals",
        json=ctx.referral_body(agreement_id=agreement_id),
        headers=ctx.fiscal,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "agreement_not_applicable"
    assert phrase in r.json()["detail"]
    assert _stored_referrals() == []


async def test_an_agreement_not_binding_both_parties_is_422(ctx):
    await ctx.agreement()  # FGR–NGO exists, but the one chosen is another pair's
    other = await ctx.agreement(parties=(FGR, OTHER_NGO))
    await _refused_with(ctx, other["id"], "no obliga")


async def test_an_unsigned_agreement_is_422(ctx):
    unsigned = await ctx.agreement(parties=(FGR, NGO), sign=False)
    await _refused_with(ctx, unsigned["id"], "no está firmado")


async def test_an_unknown_agreement_is_422(ctx):
    await _refused_with(ctx, "no-such-agreement", "No existe el convenio")

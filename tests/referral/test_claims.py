"""A claimed action (admit, discharge) interrupted between its two steps is finished by the
sweep, never half-done, and no other action slips in meanwhile (issue 20, #1)."""

from __future__ import annotations

from datetime import timedelta

from referral.flows import run_expiry
from services.clock import clock
from services.errors import ServiceUnavailable


async def _accepted(ctx) -> dict:
    await ctx.agreement()
    ref = await ctx.sent_referral()
    r = await ctx.act(ref["id"], "accept", ctx.coord)
    assert r.status_code == 200, r.text
    return r.json()


async def test_admission_interrupted_by_an_unreachable_capacity_is_finished_by_the_sweep(
    ctx, monkeypatch
):
    clock.freeze()
    ref = await _accepted(ctx)
    consume = ctx.capacity.consume_hold

    async def unreachable(hold_id, *, reference=None):
        await consume(hold_id, reference=reference)  # the beds were taken, the answer lost
        raise ServiceUnavailable("sin respuesta", code="dependency_unavailable")

    monkeypatch.setattr(ctx.capacity, "consume_hold", unreachable)
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 503
    # The claim stands: a cancel now would free a bed someone sleeps in.
    r = await ctx.act(ref["id"], "cancel", ctx.fiscal)
    assert r.status_code == 409 and r.json()["error"] == "action_in_progress"
    monkeypatch.setattr(ctx.capacity, "consume_hold", consume)
    await run_expiry(ctx.runtime)  # within the lease: left alone
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "accepted"
    clock.advance(timedelta(minutes=2))
    await run_expiry(ctx.runtime)
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)
    assert r.json()["status"] == "admitted"
    assert r.json()["history"][-1]["actor"] == "system"
    assert ctx.capacity.holds[ref["hold_id"]].status == "consumed"


async def test_a_refused_admission_lets_go_of_its_claim(ctx):
    ref = await _accepted(ctx)
    ctx.capacity.holds[ref["hold_id"]].status = "expired"
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 409 and r.json()["error"] == "hold_not_active"
    # Nothing is claimed any more: the sender may cancel at once.
    r = await ctx.act(ref["id"], "cancel", ctx.fiscal)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_discharge_is_keyed_so_a_retry_frees_the_beds_once(ctx, monkeypatch):
    ref = await _accepted(ctx)
    r = await ctx.act(ref["id"], "admit", ctx.coord)
    assert r.status_code == 200, r.text
    keys: list[str] = []

    async def discharge(pool_id, *, beds, reason, key):
        keys.append(key)

    monkeypatch.setattr(ctx.capacity, "discharge", discharge)
    r = await ctx.act(ref["id"], "discharge", ctx.coord, outcome="reintegrated_origin")
    assert r.status_code == 200 and r.json()["status"] == "discharged"
    assert keys == [f"discharge-{ref['id']}-pool-1"]

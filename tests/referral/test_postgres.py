"""The referral lifecycle on PostgreSQL: compare-and-set under real concurrency."""

from __future__ import annotations

import asyncio

import pytest

from tests.referral.conftest import NGO

pytestmark = pytest.mark.postgres


@pytest.fixture
def referral_db_url(pg_url) -> str:
    return pg_url


async def test_double_accept_on_postgres_one_wins(ctx):
    await ctx.agreement()
    ref = await ctx.sent_referral()
    other = ctx.h("institution_admin", institution_id=NGO, sub="admin-ngo")
    results = await asyncio.gather(
        *(ctx.act(ref["id"], "accept", h) for h in (ctx.coord, other, ctx.coord, other))
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    body = r.json()
    assert body["status"] == "accepted" and body["version"] == 3
    assert [h["action"] for h in body["history"]] == ["create", "send", "accept"]


async def test_idempotent_create_and_gating_on_postgres(ctx):
    body = ctx.referral_body()
    headers = {**ctx.fiscal, "Idempotency-Key": "pg-1"}
    r1 = await ctx.client.post("/api/v1/referrals", json=body, headers=headers)
    r2 = await ctx.client.post("/api/v1/referrals", json=body, headers=headers)
    assert (r1.status_code, r2.status_code) == (201, 200) and r1.json() == r2.json()
    r = await ctx.act(r1.json()["id"], "send", ctx.fiscal)
    assert r.status_code == 403 and r.json()["error"] == "no_agreement"

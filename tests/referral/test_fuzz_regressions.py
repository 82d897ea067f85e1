"""Regression tests for what the resilience suite's OpenAPI fuzzing found (one per bug)."""

from __future__ import annotations

from datetime import datetime

import pytest


async def test_referral_times_carry_their_utc_offset(ctx) -> None:
    ref = await ctx.referral()
    resp = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.fiscal)
    assert datetime.fromisoformat(resp.json()["created_at"]).utcoffset() is not None


@pytest.mark.parametrize("value", ["abc", 'W/"x"', "1.5"])
async def test_malformed_if_match_on_a_referral_is_422_not_412(ctx, value) -> None:
    """Bug: a malformed ``If-Match`` answered 412 (which means "your version is stale"),
    while capacity answers 422 for the same mistake."""
    ref = await ctx.referral()
    resp = await ctx.client.post(
        f"/api/v1/referrals/{ref['id']}/send", json={}, headers={**ctx.fiscal, "If-Match": value}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "bad_if_match"

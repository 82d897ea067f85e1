"""Regression tests for what the resilience suite's OpenAPI fuzzing found (one per bug)."""

from __future__ import annotations

from datetime import datetime


async def test_ledger_times_carry_their_utc_offset(cap) -> None:
    """Bug: ``at`` came back from SQLite naive (``2026-11-23T11:47:57``), which is not the
    RFC 3339 ``date-time`` the OpenAPI promises."""
    fac = await cap.facility()
    pool = await cap.pool(fac["id"], total=4)
    url = f"/api/v1/pools/{pool['id']}/ledger"
    resp = await cap.client.get(url, headers=cap.admin())
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert items
    for entry in items:
        assert datetime.fromisoformat(entry["at"]).utcoffset() is not None, entry["at"]
    fetched = await cap.client.get(f"/api/v1/pools/{pool['id']}", headers=cap.admin())
    confirmed = fetched.json()["last_confirmed_at"]
    assert confirmed is None or datetime.fromisoformat(confirmed).utcoffset() is not None


async def test_refusal_sentences_do_not_repeat_words(cap) -> None:
    """Bug: "no es un sexo admitido admitido"."""
    resp = await cap.client.post(
        "/api/v1/availability/search",
        json={"people": [{"sex": "W", "age": 30, "role": "victim"}]},
        headers=cap.prosecutor(),
    )
    assert resp.status_code == 422, resp.text
    assert "sexo admitido" in resp.json()["detail"]
    assert "admitido admitido" not in resp.json()["detail"]

"""The audit trail: recording, duplicates, tamper detection, access and privacy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from audit.cli import app as cli_app
from audit.database import db
from audit.main import consume
from audit.service import make_checkpoint, verify
from services.events import Event
from tests.conftest import running


def _event(i: int, **kw: Any) -> Event:
    base: dict[str, Any] = dict(
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id=f"pool-{i}",
        actor="user-1",
        institution_id="inst-1",
        payload={"facility_id": f"fac-{i % 2}", "available": i},
    )
    base.update(kw)
    return Event(**base)


def _fill(n: int = 5) -> None:
    for i in range(n):
        consume(_event(i))


def _verify() -> dict:
    with db.unit_of_work(write=False) as s:
        return verify(s)


def _sql(stmt: str, **params) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(stmt), params)


def test_clean_chain_verifies(audit_db):
    _fill()
    result = _verify()
    assert result["ok"] and result["entries"] == 5 and result["problems"] == []


def test_duplicates_ignored(audit_db):
    ev = _event(1)
    consume(ev)
    consume(ev)
    assert _verify()["entries"] == 1


def test_edited_payload_detected(audit_db):
    _fill()
    _sql(
        "UPDATE audit_entry SET canonical = replace(canonical, :a, :b) WHERE position = 3",
        a='"available":2',
        b='"available":9',
    )
    problems = _verify()["problems"]
    assert problems == [
        {"position": 3, "kind": "edited", "detail": "El contenido no coincide con su hash."}
    ]


def test_deleted_row_detected(audit_db):
    _fill()
    _sql("DELETE FROM audit_entry WHERE position = 2")
    problems = _verify()["problems"]
    assert [(p["position"], p["kind"]) for p in problems] == [(2, "deleted")]


def test_inserted_row_detected(audit_db):
    _fill()
    # A forger who knows the scheme: a self-consistent entry that does not chain.
    from audit.service import canonical_json, chain_hash

    body = {
        "position": 6,
        "event_id": "forged",
        "type": "x.y.z",
        "actor": None,
        "institution_id": None,
        "facility_id": None,
    }
    canon = canonical_json(body)
    prev = "f" * 64
    _sql(
        "INSERT INTO audit_entry (position, event_id, type, occurred_at, canonical, prev_hash, "
        "hash) VALUES (6, 'forged', 'x.y.z', '2026-01-01 00:00:00', :c, :p, :h)",
        c=canon,
        p=prev,
        h=chain_hash(prev, canon),
    )
    problems = _verify()["problems"]
    assert [(p["position"], p["kind"]) for p in problems] == [(6, "inserted")]


def test_swapped_rows_detected(audit_db):
    _fill()
    _sql("UPDATE audit_entry SET position = -1 WHERE position = 2")
    _sql("UPDATE audit_entry SET position = 2 WHERE position = 3")
    _sql("UPDATE audit_entry SET position = 3 WHERE position = -1")
    problems = _verify()["problems"]
    assert [(p["position"], p["kind"]) for p in problems] == [(2, "reordered"), (3, "reordered")]


def test_signed_checkpoint_catches_truncated_tail(audit_db):
    _fill()
    with db.unit_of_work(write=True) as s:
        assert make_checkpoint(s) is not None
    assert _verify()["checkpoints"]["valid"] == 1
    _sql("DELETE FROM audit_entry WHERE position = 5")
    problems = _verify()["problems"]
    assert [(p["position"], p["kind"]) for p in problems] == [(5, "deleted")]


def test_cli_verify_exits_nonzero_on_tampering(audit_db):
    _fill()
    runner = CliRunner()
    assert runner.invoke(cli_app, ["verify"]).exit_code == 0
    _sql("DELETE FROM audit_entry WHERE position = 2")
    result = runner.invoke(cli_app, ["verify"])
    assert result.exit_code == 1 and '"deleted"' in result.output


async def test_bus_events_recorded_filtered_and_private(audit_app, bus, auth_headers):
    async with running(audit_app) as client:
        ev = Event(
            type="referral.disclosure.address",
            aggregate_type="referral",
            aggregate_id="r-1",
            actor="dif-user",
            institution_id="inst-dif",
            payload={
                "facility_id": "fac-9",
                "address": "Calle Secreta 1",
                "full_name": "X Y",
                "person": {"name": "Z", "sex": "female"},
            },
        )
        await bus.publish(ev)
        await bus.publish(ev)  # the same event again
        await bus.publish(_event(1))
        h = auth_headers("segob_auditor")
        for _ in range(100):
            r = await client.get("/api/v1/audit/events", headers=h)
            if r.json()["total"] >= 2:
                break
            await asyncio.sleep(0.02)
        body = r.json()
        assert body["total"] == 2
        assert "Calle Secreta" not in r.text and "X Y" not in r.text and '"Z"' not in r.text
        # The trail keeps what the event's contract declares and does not mark sensitive:
        # the facility, never an address, a name, or an undeclared field.
        assert body["items"][0]["entry"]["payload"] == {"facility_id": "fac-9"}
        r = await client.get(
            "/api/v1/audit/events", params={"type": "referral.", "facility_id": "fac-9"}, headers=h
        )
        assert r.json()["total"] == 1
        r = await client.get("/api/v1/audit/verify", headers=h)
        assert r.json()["ok"] is True and r.json()["entries"] == 2
        r = await client.get("/api/v1/audit/public-key", headers=h)
        assert "BEGIN PUBLIC KEY" in r.json()["public_key_pem"]


@pytest.mark.parametrize("role", ["observer", "dif_officer"])
async def test_only_auditors_read_the_trail(audit_app, auth_headers, role):
    async with running(audit_app) as client:
        r = await client.get("/api/v1/audit/events", headers=auth_headers(role))
        assert r.status_code == 403
        r = await client.get("/api/v1/audit/verify", headers=auth_headers(role))
        assert r.status_code == 403


async def test_events_time_filters_and_pagination(audit_app, auth_headers):
    from datetime import UTC, datetime

    for day in (1, 2, 3, 4):
        consume(_event(day, occurred_at=datetime(2026, 5, day, tzinfo=UTC)))
    h = auth_headers("platform_admin")
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/audit/events",
            params={"since": "2026-05-02T00:00:00Z", "until": "2026-05-04T00:00:00Z"},
            headers=h,
        )
        assert [i["position"] for i in r.json()["items"]] == [2, 3]
        r = await client.get("/api/v1/audit/events", params={"limit": 2, "offset": 2}, headers=h)
        body = r.json()
        assert body["total"] == 4 and [i["position"] for i in body["items"]] == [3, 4]


async def test_events_keyset_pages_either_way_with_offset_still_working(audit_app, auth_headers):
    _fill(7)
    h = auth_headers("platform_admin")

    async def walk(client, **params: Any) -> list[list[int]]:
        pages, cursor = [], None
        while True:
            q = {**params, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/api/v1/audit/events", params=q, headers=h)).json()
            assert body["total"] == (3 if "facility_id" in params else 7)
            pages.append([i["position"] for i in body["items"]])
            cursor = body["next_cursor"]
            if cursor is None:
                return pages
            assert len(pages) < 10, "the cursor must move on"

    async with running(audit_app) as client:
        assert await walk(client, limit=3) == [[1, 2, 3], [4, 5, 6], [7]]
        assert await walk(client, limit=3, order="desc") == [[7, 6, 5], [4, 3, 2], [1]]
        assert await walk(client, limit=7) == [[1, 2, 3, 4, 5, 6, 7]]
        # a filter narrows every page (pool events of facility fac-1: odd aggregates)
        assert await walk(client, limit=2, facility_id="fac-1", order="desc") == [[6, 4], [2]]
        old = await client.get("/api/v1/audit/events?limit=2&offset=5", headers=h)
        assert [i["position"] for i in old.json()["items"]] == [6, 7]
        assert old.json()["next_cursor"] is None
        for bad in ("nope", "WyJ4Il0", "W10", "x" * 700, "WzEsMl0"):  # junk, ["x"], [], [1,2]
            r = await client.get(f"/api/v1/audit/events?cursor={bad}", headers=h)
            assert r.status_code == 422, bad
            assert set(r.json()) >= {"error", "detail"}
        first = (await client.get("/api/v1/audit/events?limit=2", headers=h)).json()
        both = await client.get(
            "/api/v1/audit/events", params={"cursor": first["next_cursor"], "offset": 1}, headers=h
        )
        assert both.status_code == 422 and both.json()["error"] == "cursor_with_offset"
        r = await client.get("/api/v1/audit/events?order=sideways", headers=h)
        assert r.status_code == 422

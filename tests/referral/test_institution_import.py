"""Institutions loaded in bulk (``POST /institutions/import``, service token only): stored,
named and announced as one created by hand; idempotent; a bad batch writes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import col, select

from referral.database import db
from referral.models import Institution, InstitutionName
from services.ids import new_id
from tests.referral.conftest import FGR, Ctx

PATH = "/api/v1/institutions/import"


def _service(ctx: Ctx) -> dict[str, str]:
    return ctx.h("service", sub="seed-loader")


def _batch() -> list[dict[str, Any]]:
    """A parent listed after its two regional offices, and an NGO with its legal form."""
    parent, ngo = new_id(), new_id()
    return [
        {"id": new_id(), "name": "Delegación Jalisco", "type": "inm", "state": "14",
         "parent_id": parent},
        {"id": new_id(), "name": "Delegación Nuevo León", "type": "inm", "state": "19",
         "parent_id": parent, "legal_form": None},
        {"id": parent, "name": "INM (oficinas centrales)", "type": "inm", "state": "09"},
        {"id": ngo, "name": "Refugio Esperanza", "type": "ngo", "state": "14",
         "legal_form": "I.A.P."},
        # an office of an institution stored before the batch
        {"id": new_id(), "name": "FGR Jalisco", "type": "fiscalia_federal", "state": "14",
         "parent_id": FGR},
    ]  # fmt: skip


def _stored(ids: list[str]) -> dict[str, Institution]:
    with db.new_session(write=False) as s:
        return {i.id: i for i in s.exec(select(Institution).where(col(Institution.id).in_(ids)))}


async def _created_events(ctx: Ctx, ids: set[str], count: int) -> list[Any]:
    for _ in range(200):
        found = [
            e for e in ctx.events
            if e.type == "referral.institution.created" and e.payload["id"] in ids
        ]  # fmt: skip
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    return found


async def test_a_batch_is_stored_named_and_announced_once(ctx):
    batch = _batch()
    ids = [i["id"] for i in batch]
    r = await ctx.client.post(PATH, json={"institutions": batch}, headers=_service(ctx))
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 5, "created": 5, "already_present": 0}
    stored = _stored(ids)
    assert set(stored) == set(ids)
    for item in batch:
        row = stored[item["id"]]
        assert (row.name, row.type, row.state) == (item["name"], item["type"], item["state"])
        assert row.parent_id == item.get("parent_id")
        assert row.legal_form == item.get("legal_form")
    with db.new_session(write=False) as s:
        names = s.exec(
            select(InstitutionName.institution_id, InstitutionName.name).where(
                col(InstitutionName.institution_id).in_(ids)
            )
        ).all()
    assert sorted(names) == sorted((i["id"], i["name"]) for i in batch)
    # readable as any institution, with its history of names
    one = await ctx.client.get(f"/api/v1/institutions/{ids[0]}", headers=ctx.coord)
    assert one.status_code == 200 and one.json()["names"][0]["name"] == "Delegación Jalisco"
    events = await _created_events(ctx, set(ids), 5)
    assert sorted(e.payload["id"] for e in events) == sorted(ids)

    # a second run stores and announces nothing
    again = await ctx.client.post(PATH, json={"institutions": batch}, headers=_service(ctx))
    assert again.status_code == 200, again.text
    assert again.json() == {"received": 5, "created": 0, "already_present": 5}
    await asyncio.sleep(0.3)  # what the relay would publish, it has had time to
    assert len(await _created_events(ctx, set(ids), 6)) == 5


async def test_only_a_service_token_imports(ctx):
    batch = _batch()
    for headers in (ctx.admin, ctx.fiscal):
        r = await ctx.client.post(PATH, json={"institutions": batch}, headers=headers)
        assert r.status_code == 403, r.text
        assert set(r.json()) >= {"error", "detail"}
    assert _stored([i["id"] for i in batch]) == {}


async def test_a_batch_with_one_bad_institution_writes_nothing(ctx):
    service = _service(ctx)
    cases: list[tuple[list[dict[str, Any]], int, str]] = []
    legal = _batch()
    legal[0]["legal_form"] = "A.C."  # only an NGO has a legal form
    cases.append((legal, 422, "institutions_rejected"))
    orphan = _batch()
    orphan[-1]["parent_id"] = new_id()  # a parent neither stored nor in the batch
    cases.append((orphan, 422, "institutions_rejected"))
    circle = _batch()
    a, b = circle[0], circle[1]
    a["parent_id"], b["parent_id"] = b["id"], a["id"]
    cases.append((circle, 422, "institutions_rejected"))
    no_id = _batch()
    del no_id[2]["id"]  # a bulk load names every id
    cases.append((no_id, 422, "validation_error"))
    unknown = _batch()
    unknown[3]["colour"] = "rojo"
    cases.append((unknown, 422, "validation_error"))
    for batch, status, error in cases:
        r = await ctx.client.post(PATH, json={"institutions": batch}, headers=service)
        assert r.status_code == status, r.text
        assert r.json()["error"] == error, r.json()
        assert r.json()["detail"]
        assert _stored([i["id"] for i in batch if "id" in i]) == {}, batch
    too_many: list[dict[str, Any]] = [{"institutions": []}, {}]
    too_many.append({"institutions": [_batch()[2]] * 1_001})
    for body in too_many:
        r = await ctx.client.post(PATH, json=body, headers=service)
        assert r.status_code == 422, r.text

"""Institutions (with name history) and agreements (parties, signatures, status)."""

from __future__ import annotations

import hashlib

from tests.referral.conftest import FGR, NGO


async def test_only_platform_admin_creates_institutions_and_renames_keep_history(ctx):
    body = {"name": "PGR", "type": "fiscalia_federal", "state": "09"}
    r = await ctx.client.post("/api/v1/institutions", json=body, headers=ctx.fiscal)
    assert r.status_code == 403
    r = await ctx.client.post("/api/v1/institutions", json=body, headers=ctx.admin)
    assert r.status_code == 201
    inst = r.json()
    r = await ctx.client.patch(
        f"/api/v1/institutions/{inst['id']}", json={"name": "FGR"}, headers=ctx.admin
    )
    assert r.status_code == 200
    names = r.json()["names"]
    assert [n["name"] for n in names] == ["PGR", "FGR"]
    assert names[0]["valid_to"] is not None and names[1]["valid_to"] is None
    r = await ctx.client.get(f"/api/v1/institutions/{inst['id']}", headers=ctx.coord)
    assert r.json()["name"] == "FGR"


async def test_institution_bad_input(ctx):
    for bad in (
        {"name": "X", "type": "prison", "state": "09"},
        {"name": "X", "type": "ngo", "state": "33"},
        {"name": "X", "type": "ngo", "state": "09", "color": "red"},
    ):
        r = await ctx.client.post("/api/v1/institutions", json=bad, headers=ctx.admin)
        assert r.status_code == 422, bad
    r = await ctx.client.post(
        "/api/v1/institutions",
        json={"name": "X", "type": "inm", "state": "09", "legal_form": "A.C."},
        headers=ctx.admin,
    )
    assert r.status_code == 422 and r.json()["error"] == "legal_form_not_applicable"
    r = await ctx.client.get("/api/v1/institutions", headers=ctx.h("observer"))
    assert r.status_code == 403


async def test_agreement_is_signed_once_every_party_signs(ctx):
    agreement = await ctx.agreement(sign=False)
    assert agreement["status"] == "draft"
    url = f"/api/v1/agreements/{agreement['id']}/sign"
    # another institution's admin may not sign for FGR
    r = await ctx.client.post(
        url, json={"institution_id": FGR}, headers=ctx.h("institution_admin", institution_id=NGO)
    )
    assert r.status_code == 403
    r = await ctx.client.post(
        url, json={"institution_id": FGR}, headers=ctx.h("institution_admin", institution_id=FGR)
    )
    assert r.json()["status"] == "ready_for_signature"
    r = await ctx.client.post(
        url, json={"institution_id": FGR}, headers=ctx.h("institution_admin", institution_id=FGR)
    )
    assert r.status_code == 409
    # a platform admin signs naming the party
    r = await ctx.client.post(url, json={"institution_id": NGO}, headers=ctx.admin)
    body = r.json()
    assert body["status"] == "signed"
    assert all(p["signed"] and p["signed_by"] for p in body["parties"])
    r = await ctx.client.post(f"/api/v1/agreements/{agreement['id']}/revoke", headers=ctx.admin)
    assert r.json()["status"] == "revoked"


async def test_agreement_needs_two_parties_and_a_valid_range(ctx):
    base = {"number": "C-1", "title": "T", "valid_from": "2026-01-01", "valid_to": "2027-01-01"}
    r = await ctx.client.post(
        "/api/v1/agreements", json={**base, "party_ids": [FGR]}, headers=ctx.admin
    )
    assert r.status_code == 422
    r = await ctx.client.post(
        "/api/v1/agreements",
        json={**base, "party_ids": [FGR, NGO], "valid_to": "2025-01-01"},
        headers=ctx.admin,
    )
    assert r.status_code == 422


async def test_document_is_stored_with_its_hash(ctx):
    agreement = await ctx.agreement()
    pdf = b"%PDF-1.4 convenio firmado"
    r = await ctx.client.post(
        f"/api/v1/agreements/{agreement['id']}/document",
        content=pdf,
        headers={**ctx.admin, "content-type": "application/pdf"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    r = await ctx.client.post(
        f"/api/v1/agreements/{agreement['id']}/document",
        content=b"not a pdf",
        headers={**ctx.admin, "content-type": "application/pdf"},
    )
    assert r.status_code == 422

"""Institutions (with name history) and agreements (parties, signatures, status)."""

from __future__ import annotations

import base64
import hashlib

import pytest

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


def _signed(doc: bytes, key_kind: str = "ec") -> tuple[bytes, bytes]:
    """A self-signed certificate and a detached CMS signature of ``doc``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs7
    from cryptography.x509.oid import NameOID

    key = (
        ec.generate_private_key(ec.SECP256R1())
        if key_kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Titular de FEVIMTRA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    sig = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(doc)
        .add_signer(cert, key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
    return cert.public_bytes(serialization.Encoding.DER), sig


@pytest.mark.parametrize("key_kind", ["ec", "rsa"])
def test_detached_cms_signature_is_verified(key_kind):
    from referral.agreements import verify_detached_signature

    doc = b"%PDF-1.4 convenio firmado"
    _, sig = _signed(doc, key_kind)
    ok, detail = verify_detached_signature(doc, sig)
    assert ok and "Titular de FEVIMTRA" in detail
    assert verify_detached_signature(doc + b" alterado", sig)[0] is False
    tampered = sig[:-5] + bytes(b ^ 0xFF for b in sig[-5:])
    assert verify_detached_signature(doc, tampered)[0] is False
    assert verify_detached_signature(doc, b"\x30\x82\xff\xff basura")[0] is False


async def test_document_with_signature_records_the_check(ctx):
    agreement = await ctx.agreement()
    pdf = b"%PDF-1.4 convenio firmado"
    _, sig = _signed(pdf)
    url = f"/api/v1/agreements/{agreement['id']}/document"
    headers = {**ctx.admin, "content-type": "application/pdf"}
    r = await ctx.client.post(
        url, content=pdf, headers={**headers, "X-CMS-Signature": base64.b64encode(sig).decode()}
    )
    assert r.status_code == 200, r.text
    assert r.json()["signature_verified"] is True
    r = await ctx.client.post(
        url,
        content=pdf + b"x",
        headers={**headers, "X-CMS-Signature": base64.b64encode(sig).decode()},
    )
    assert r.json()["signature_verified"] is False
    r = await ctx.client.post(url, content=pdf, headers={**headers, "X-CMS-Signature": "%%%"})
    assert r.status_code == 400

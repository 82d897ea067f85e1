"""After acceptance: arrival instructions, the transfer with its expected arrival, the oficio
de canalización; and what the receiver sees before accepting (issue 19)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime, timedelta

from canaliza.demo import CASA_MERCEDES, FGR
from tests.referral.test_end_to_end import _referral, both

__all__ = ["both"]


def pdf_text(pdf: bytes) -> str:
    """The text drawn in a PDF made by fpdf2 (its content streams, inflated)."""
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            chunks.append(stream.decode("latin-1"))
    return "".join(chunks)


async def test_the_shelter_sets_arrival_instructions_the_sender_reads_them_after_acceptance(both):
    client, h, facility, pool = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    body = {"contact": "Lic. Rosa, 55 1234 5678", "arrival_instructions": "Portón gris."}
    r = await client.put(f"/api/v1/facilities/{facility['id']}/arrival", json=body, headers=fiscal)
    assert r.status_code == 403, r.text
    r = await client.put(f"/api/v1/facilities/{facility['id']}/arrival", json=body, headers=coord)
    assert r.status_code == 200, r.text
    assert r.json()["contact"] == body["contact"]
    r = await client.put(
        f"/api/v1/facilities/{facility['id']}/arrival", json={"contact": "x"}, headers=coord
    )
    assert r.status_code == 422 and "contact" in r.json()["detail"]
    # The roster shows the prosecutor neither the address nor the contact.
    seen = (await client.get(f"/api/v1/facilities/{facility['id']}", headers=fiscal)).json()
    assert "contact" not in seen and "address" not in seen
    ref = await _referral(client, h, facility, pool)
    await client.post(f"/api/v1/referrals/{ref['id']}/accept", headers=coord)
    r = await client.get(f"/api/v1/referrals/{ref['id']}/facility-address", headers=fiscal)
    assert r.status_code == 200, r.text
    assert (r.json()["contact"], r.json()["arrival_instructions"]) == (
        body["contact"],
        body["arrival_instructions"],
    )


async def test_the_transfer_carries_an_expected_arrival_and_admission_follows(both):
    client, h, facility, pool = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    ref = await _referral(client, h, facility, pool)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = await client.post(
        f"/api/v1/referrals/{ref['id']}/accept", json={"expected_arrival_at": soon}, headers=coord
    )
    assert r.status_code == 422 and r.json()["error"] == "expected_arrival_not_applicable"
    assert (
        await client.post(f"/api/v1/referrals/{ref['id']}/accept", headers=coord)
    ).status_code == 200
    past = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    for bad, code in (
        (past, "expected_arrival_in_past"),
        ((datetime.now(UTC) + timedelta(days=5)).isoformat(), "expected_arrival_too_late"),
    ):
        r = await client.post(
            f"/api/v1/referrals/{ref['id']}/in_transit",
            json={"expected_arrival_at": bad},
            headers=fiscal,
        )
        assert r.status_code == 422 and r.json()["error"] == code, r.text
    r = await client.post(
        f"/api/v1/referrals/{ref['id']}/in_transit",
        json={"expected_arrival_at": "2026-12-06T18:00:00"},
        headers=fiscal,
    )
    assert r.status_code == 422 and "zona horaria" in r.json()["detail"]
    r = await client.post(
        f"/api/v1/referrals/{ref['id']}/in_transit",
        json={"expected_arrival_at": soon},
        headers=fiscal,
    )
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["status"] == "in_transit"
    assert datetime.fromisoformat(moved["expected_arrival_at"]) == datetime.fromisoformat(soon)
    seen = (await client.get(f"/api/v1/referrals/{ref['id']}", headers=coord)).json()
    assert seen["expected_arrival_at"] == moved["expected_arrival_at"]
    r = await client.post(f"/api/v1/referrals/{ref['id']}/admit", headers=coord)
    assert r.status_code == 200 and r.json()["status"] == "admitted", r.text


async def test_the_oficio_is_for_the_two_institutions_once_accepted(both):
    client, h, facility, pool = both
    fiscal = h("prosecutor", institution_id=FGR.id, sub="fiscal")
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    auditor = h("segob_auditor", sub="auditor")
    ref = await _referral(client, h, facility, pool)
    r = await client.get(f"/api/v1/referrals/{ref['id']}/oficio", headers=fiscal)
    assert r.status_code == 409, r.text
    await client.post(f"/api/v1/referrals/{ref['id']}/accept", headers=coord)
    assert (
        await client.get(f"/api/v1/referrals/{ref['id']}/oficio", headers=auditor)
    ).status_code == 403
    for who in (fiscal, coord):
        r = await client.get(f"/api/v1/referrals/{ref['id']}/oficio", headers=who)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        text = pdf_text(r.content)
        folio = f"CAN-{ref['id'].replace('-', '')[:8].upper()}"
        assert folio in r.headers["content-disposition"]
        for expected in (
            folio,
            "FEVIMTRA",
            "Refugio Esperanza",
            "CONV-E2E-1",
            "28 a",
            "Mujer",
            "xico",
        ):
            assert expected in text, expected
        assert "Calle Secreta" not in text  # the address leaves only through its audited route


async def test_before_accepting_the_receiver_sees_an_age_band_not_the_age(both):
    client, h, facility, pool = both
    coord = h("shelter_coordinator", institution_id=CASA_MERCEDES.id, sub="coord")
    ref = await _referral(client, h, facility, pool)
    [person] = (await client.get(f"/api/v1/referrals/{ref['id']}", headers=coord)).json()["people"]
    assert (person["age"], person["age_band"], person["nationality"]) == (None, "18-59", "MEX")

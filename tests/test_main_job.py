"""The main job's story, end to end, with the demo users and the demo data.

A prosecutor finds a bed for a mother and two children in Mexico City, holds it, sends a
referral along a signed agreement; the coordinator accepts and admits; the DIF and CEAV
obligations appear and are fulfilled; the outcome report counts the referral. Everything
goes through the public HTTP API of the one-process app, with tokens from its own auth
service (password grant, demo mode).
"""

from __future__ import annotations

import pytest

from services.demo import CASA_MERCEDES, DIF_CDMX, FGR
from services.launcher import available_packages, build_app, load_spec
from services.settings import get_settings
from tests.conftest import running

pytestmark = pytest.mark.slow

MOTHER_AND_CHILDREN = [
    {"sex": "F", "age": 29, "role": "victim", "nationality": "MEX"},
    {"sex": "M", "age": 4, "role": "accompanying_child", "nationality": "MEX"},
    {"sex": "F", "age": 9, "role": "accompanying_child", "nationality": "MEX"},
]


@pytest.fixture
def demo_app(monkeypatch):
    monkeypatch.setenv("CANALIZA_DEMO", "1")
    get_settings.cache_clear()
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.configure()  # this test's own SQLite files
    app = build_app("all")
    yield app
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is not None:
            spec.database.dispose()


async def _login(client, username: str) -> dict[str, str]:
    resp = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": get_settings().demo_password,
            "client_id": "canaliza-cli",
        },
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_mother_and_two_children_are_referred_admitted_and_counted(demo_app):
    from services.seed import load_demo_into_app

    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:5]

    async with running(demo_app) as client:
        fiscal = await _login(client, "fiscal")
        coordinadora = await _login(client, "coordinadora")
        ceav = await _login(client, "ceav")

        people = [{k: p[k] for k in ("sex", "age", "role")} for p in MOTHER_AND_CHILDREN]
        found = await client.post(
            "/api/v1/availability/search",
            json={"people": people, "needs": {}, "state": "09"},
            headers=fiscal,
        )
        assert found.status_code == 200, found.text
        results = found.json()["results"]
        ours = [r for r in results if r["facility"]["operator_institution_id"] == CASA_MERCEDES.id]
        assert ours, f"no Casa de las Mercedes facility offered: {found.json()}"
        choice = ours[0]
        assert sum(p["beds"] for p in choice["pools"]) == 3

        hold = await client.post(
            "/api/v1/holds",
            json={
                "allocations": [
                    {"pool_id": p["pool_id"], "beds": p["beds"]} for p in choice["pools"]
                ]
            },
            headers=fiscal,
        )
        assert hold.status_code == 201, hold.text
        pool_id = choice["pools"][0]["pool_id"]
        before = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinadora)).json()

        created = await client.post(
            "/api/v1/referrals",
            json={
                "sending_institution_id": FGR.id,
                "receiving_institution_id": CASA_MERCEDES.id,
                "facility_id": choice["facility"]["id"],
                "hold_id": hold.json()["id"],
                "people": MOTHER_AND_CHILDREN,
                "consent": {"given": True},
                "urgency": "urgent",
            },
            headers={**fiscal, "Idempotency-Key": "e2e-1"},
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        sent = await client.post(f"/api/v1/referrals/{referral_id}/send", json={}, headers=fiscal)
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "sent"

        accepted = await client.post(
            f"/api/v1/referrals/{referral_id}/accept", json={}, headers=coordinadora
        )
        assert accepted.status_code == 200, accepted.text
        admitted = await client.post(
            f"/api/v1/referrals/{referral_id}/admit", json={}, headers=coordinadora
        )
        assert admitted.status_code == 200, admitted.text
        assert admitted.json()["status"] == "admitted"

        after = (await client.get(f"/api/v1/pools/{pool_id}", headers=coordinadora)).json()
        beds_here = next(p["beds"] for p in choice["pools"] if p["pool_id"] == pool_id)
        assert after["occupied"] == before["occupied"] + beds_here
        assert after["held"] == before["held"] - beds_here

        body = admitted.json()
        kinds = {o["kind"]: o for o in body["obligations"]}
        assert {"dif_child_protection", "ceav_registration"} <= set(kinds)
        assert all(o["status"] != "fulfilled" for o in body["obligations"])
        # The minors' obligation belongs to the state DIF of CDMX: its officer `dif_cdmx`
        # records it; CEAV's is fulfilled by the `ceav` demo user.
        dif_cdmx = await _login(client, "dif_cdmx")
        assert kinds["dif_child_protection"]["institution_id"] == DIF_CDMX.id
        for kind, headers in (("dif_child_protection", dif_cdmx), ("ceav_registration", ceav)):
            done = await client.post(
                f"/api/v1/referrals/{referral_id}/obligations/{kinds[kind]['id']}/fulfil",
                json={"note": "atendido"},
                headers=headers,
            )
            assert done.status_code == 200, done.text
        final = (await client.get(f"/api/v1/referrals/{referral_id}", headers=fiscal)).json()
        assert {o["kind"]: o["status"] for o in final["obligations"]}[
            "dif_child_protection"
        ] == "fulfilled"

        discharged = await client.post(
            f"/api/v1/referrals/{referral_id}/discharge",
            json={"outcome": "reintegrated_origin", "reason": "reintegración familiar"},
            headers=coordinadora,
        )
        assert discharged.status_code == 200, discharged.text
        auditor = await _login(client, "auditor")
        report_resp = await client.get("/api/v1/referrals/reports/outcomes", headers=auditor)
        assert report_resp.status_code == 200, report_resp.text
        lines = [
            ln
            for ln in report_resp.json()
            if ln["sending_institution_id"] == FGR.id and ln["outcome"] == "reintegrated_origin"
        ]
        assert lines and lines[0]["count"] >= 1, report_resp.json()


GIRL_AND_BABY = [
    {"sex": "F", "age": 16, "role": "victim", "nationality": "MEX"},
    {"sex": "M", "age": 0, "role": "accompanying_child", "nationality": "MEX"},
]


async def test_a_girl_of_16_and_her_baby_are_taken_in_together_at_2_am(demo_app):
    """The mission's example: at 2 a.m. a FEVIMTRA prosecutor rescues a 16-year-old girl
    and her baby; the first place Mexico City offers takes both, under a signed agreement,
    and the state DIF of CDMX (not the national one) answers for the child protection."""
    from services.seed import load_demo_into_app

    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:5]

    async with running(demo_app) as client:
        fiscal = await _login(client, "fiscal")
        coordinadora = await _login(client, "coordinadora")
        people = [{k: p[k] for k in ("sex", "age", "role")} for p in GIRL_AND_BABY]
        found = await client.post(
            "/api/v1/availability/search",
            json={"people": people, "needs": {}, "state": "09"},
            headers=fiscal,
        )
        assert found.status_code == 200, found.text
        results = found.json()["results"]
        assert results, found.json()
        first = results[0]
        assert first["facility"]["state"] == "09"
        assert first["facility"]["operator_institution_id"] == CASA_MERCEDES.id
        assert [p["beds"] for p in first["pools"]] == [2]  # mother and baby, one pool

        # FEVIMTRA may refer there: a signed agreement binds it and Casa de las Mercedes
        agreements = (await client.get("/api/v1/agreements", headers=fiscal)).json()
        items = agreements["items"] if isinstance(agreements, dict) else agreements
        assert any(
            a["status"] == "signed" and {FGR.id, CASA_MERCEDES.id} <= set(a["party_ids"])
            for a in items
        )

        hold = await client.post(
            "/api/v1/holds",
            json={
                "allocations": [
                    {"pool_id": p["pool_id"], "beds": p["beds"]} for p in first["pools"]
                ],
                "ttl_minutes": 60,
            },
            headers=fiscal,
        )
        assert hold.status_code == 201, hold.text
        created = await client.post(
            "/api/v1/referrals",
            json={
                "sending_institution_id": FGR.id,
                "receiving_institution_id": CASA_MERCEDES.id,
                "facility_id": first["facility"]["id"],
                "hold_id": hold.json()["id"],
                "people": GIRL_AND_BABY,
                "consent": {"given": True},
                "urgency": "urgent",
            },
            headers={**fiscal, "Idempotency-Key": "e2e-girl-and-baby"},
        )
        assert created.status_code == 201, created.text
        referral_id = created.json()["id"]
        sent = await client.post(f"/api/v1/referrals/{referral_id}/send", json={}, headers=fiscal)
        assert sent.status_code == 200, sent.text
        assert sent.json()["status"] == "sent"
        accepted = await client.post(
            f"/api/v1/referrals/{referral_id}/accept", json={}, headers=coordinadora
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["status"] == "accepted"

        obligation = next(
            o for o in accepted.json()["obligations"] if o["kind"] == "dif_child_protection"
        )
        assert obligation["institution_id"] == DIF_CDMX.id
        # the national DIF's officer is not the one who answers for a minor in CDMX
        national = await client.post(
            f"/api/v1/referrals/{referral_id}/obligations/{obligation['id']}/fulfil",
            json={"note": "atendido"},
            headers=await _login(client, "dif"),
        )
        assert national.status_code == 403, national.text
        done = await client.post(
            f"/api/v1/referrals/{referral_id}/obligations/{obligation['id']}/fulfil",
            json={"note": "Procuraduría de Protección notificada"},
            headers=await _login(client, "dif_cdmx"),
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "fulfilled"

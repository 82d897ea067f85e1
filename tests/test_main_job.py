"""The main job's story, end to end, with the demo users and the demo data.

A prosecutor finds a bed for a mother and two children in Mexico City, holds it, sends a
referral along a signed agreement; the coordinator accepts and admits; the DIF and CEAV
obligations appear and are fulfilled; the outcome report counts the referral. Everything
goes through the public HTTP API of the one-process app, with tokens from its own auth
service (password grant, demo mode).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from canaliza.composition import available_packages, load_spec
from canaliza.demo import CASA_MERCEDES, DIF_CDMX, FGR
from canaliza.seed.generator import generate
from services.contracts import CONTRACTS
from tests.conftest import demo_login, running

pytestmark = pytest.mark.slow

MOTHER_AND_CHILDREN = [
    {"sex": "F", "age": 29, "role": "victim", "nationality": "MEX"},
    {"sex": "M", "age": 4, "role": "accompanying_child", "nationality": "MEX"},
    {"sex": "F", "age": 9, "role": "accompanying_child", "nationality": "MEX"},
]


@pytest.fixture
def demo_app(all_services_app):
    return all_services_app


_login = demo_login


async def test_mother_and_two_children_are_referred_admitted_and_counted(demo_app):
    from canaliza.seed import load_demo_into_app

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

        await _auditor_path(client, auditor, coordinadora, choice["facility"]["id"])
        ids = {
            "facility_id": choice["facility"]["id"],
            "referral_id": referral_id,
            "pool_id": pool_id,
            "hold_id": hold.json()["id"],
            "institution_id": FGR.id,
        }
        await _auditor_sees_no_address(client, demo_app, auditor, coordinadora, ids)
    _every_event_has_its_contract()


def _every_event_has_its_contract() -> None:
    """Every event the demo and the story wrote to an outbox is a declared, valid contract,
    and the trail keeps exactly its contract's redacted payload (ADR 0018)."""
    seen: set[str] = set()
    for name in available_packages():
        spec = load_spec(name)
        if spec.database is None or "outbox" not in spec.database.metadata.tables:
            continue
        with spec.database.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT type, body FROM outbox")).all()
        for type_, body in rows:
            assert type_ in CONTRACTS, f"{type_} has no contract"
            payload = body if isinstance(body, dict) else json.loads(body)
            CONTRACTS[type_].model_validate(payload["payload"])
            seen.add(type_)
    # The story above emits events of every service that produces any.
    assert {t.split(".", 1)[0] for t in seen} >= {"auth", "capacity", "referral"}, seen


async def _eventually(client, path: str, headers: dict[str, str], ok) -> dict:
    """GET ``path`` until ``ok(body)``: the audit service learns of changes through the bus."""
    for _ in range(100):
        resp = await client.get(path, headers=headers)
        assert resp.status_code == 200, resp.text
        if ok(resp.json()):
            return resp.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} never satisfied the condition: {resp.text[:500]}")


async def _auditor_sees_no_address(client, app, auditor, coordinadora, ids) -> None:
    """Every GET route of the API, as the auditor: never an address, never an identity."""
    from audit.reports import REPORTS

    facility = (
        await client.get(f"/api/v1/facilities/{ids['facility_id']}", headers=coordinadora)
    ).json()
    secret = facility["address"]
    assert secret  # the operator's staff do see it: the check below means something
    visits = (await client.get("/api/v1/visits", headers=auditor)).json()
    ids["visit_id"] = visits[0]["id"]
    agreements = (await client.get("/api/v1/agreements", headers=auditor)).json()
    items = agreements["items"] if isinstance(agreements, dict) else agreements
    ids["agreement_id"] = items[0]["id"] if items else "none"
    ids.setdefault("operation_id", "none")  # a rescue operation: the auditor may not see it
    seen = 0
    for path, ops in app.openapi()["paths"].items():
        if "get" not in ops or not path.startswith("/api/v1/"):
            continue
        names = list(REPORTS) if "{name}" in path else [None]
        for name in names:
            url = path.replace("{name}", name or "").format(**ids)
            query = {"year": date.today().year} if url.endswith("monthly-report") else {}
            r = await client.get(url, params=query, headers=auditor)
            if url.endswith(("/facility-address", "/identities")):
                assert r.status_code == 403, (url, r.status_code)
                continue
            assert secret not in r.text, url
            assert '"address"' not in r.text and '"full_name"' not in r.text, url
            seen += r.status_code == 200
    assert seen >= 25, seen


async def _auditor_path(client, auditor, coordinadora, facility_id: str) -> None:
    """SEGOB: registration review, the roster with its flags, a visit, reports, the trail."""
    from audit.reports import REPORTS
    from capacity.registration import CHECKLIST_CODES

    reg = f"/api/v1/facilities/{facility_id}/registration"
    r = await client.post(f"{reg}/submit", json={"note": "Solicitud inicial"},
                          headers=coordinadora)  # fmt: skip
    assert r.status_code == 200, r.text
    answers = [{"item": c, "met": c != "accessibility"} for c in CHECKLIST_CODES]
    r = await client.post(
        f"{reg}/review",
        json={"outcome": "returned", "checklist": answers, "observations": "Falta rampa."},
        headers=auditor,
    )
    assert r.status_code == 200 and r.json()["registration_status"] == "returned", r.text
    r = await client.post(f"{reg}/submit", json={"note": "Rampa instalada"}, headers=coordinadora)
    assert r.status_code == 200, r.text
    answers = [{"item": c, "met": True} for c in CHECKLIST_CODES]
    r = await client.post(f"{reg}/review", json={"outcome": "registered", "checklist": answers},
                          headers=auditor)  # fmt: skip
    assert r.status_code == 200 and r.json()["registration_status"] == "registered", r.text

    roster = await _eventually(
        client,
        "/api/v1/roster",
        auditor,
        lambda b: any(
            i["facility_id"] == facility_id and i["registration_status"] == "registered"
            for i in b["items"]
        ),
    )
    # the demo's SEGOB history (003:517): six facilities visited, ten registered, the rest never
    visited = {v["facility_id"] for v in generate("demo", 2026).visits}
    assert roster["total"] >= 2
    assert roster["flag_counts"]["never_visited"] == roster["total"] - len(visited)
    assert "address" not in str(roster)
    facilities = (await client.get("/api/v1/facilities?limit=500", headers=auditor)).json()
    assert facilities["items"] and all("address" not in f for f in facilities["items"])
    mine = next(i for i in roster["items"] if i["facility_id"] == facility_id)
    assert "unregistered_active" not in mine["flags"]

    visit = await client.post(
        "/api/v1/visits",
        json={
            "facility_id": facility_id,
            "done_on": str(date.today()),
            "team": ["Lic. Ana Pérez", "Mtro. Luis Gómez"],
            "findings": "Instalaciones en buen estado; falta señalización de salida.",
            "actions": [{"description": "Colocar señalización de salida",
                         "due_on": str(date.today() + timedelta(days=30))}],
        },
        headers=auditor,
    )  # fmt: skip
    assert visit.status_code == 201, visit.text
    line = (await client.get(f"/api/v1/roster/{facility_id}", headers=auditor)).json()
    assert "never_visited" not in line["flags"] and line["open_actions"] == 1

    for name in REPORTS:
        for fmt in ("json", "csv", "xlsx", "pdf"):
            r = await client.get(f"/api/v1/reports/{name}?format={fmt}", headers=auditor)
            assert r.status_code == 200, (name, fmt, r.text[:300])
            assert r.content, (name, fmt)
    r = await client.get("/api/v1/roster?format=pdf", headers=auditor)
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    year = date.today().year
    monthly = await client.get(
        f"/api/v1/roster/{facility_id}/monthly-report?year={year}", headers=auditor
    )
    assert monthly.status_code == 200, monthly.text
    served = monthly.json()["sections"][0]["total"]["values"][date.today().month - 1]
    assert served >= 3  # the mother and her two children were admitted this month
    r = await client.get(
        f"/api/v1/roster/{facility_id}/monthly-report?year={year}&format=pdf", headers=auditor
    )
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    directory = (await client.get("/api/v1/directory/hsds", headers=auditor)).json()
    assert "Casa de las Mercedes" in str(directory["organizations"])
    assert directory["services"] and "address" not in str(directory)

    verified = (await client.get("/api/v1/audit/verify", headers=auditor)).json()
    assert verified["ok"] is True, verified["problems"][:5]
    reviews = await _eventually(
        client,
        "/api/v1/audit/events?type=capacity.facility.registration_reviewed",
        auditor,
        # ours (returned, then registered) and the demo's seeded registrations
        lambda b: b["total"] == 2 + len(generate("demo", 2026).registrations),
    )
    ours = (await client.get("/api/v1/audit/events?type=audit.&limit=1000", headers=auditor)).json()
    types = {e["type"] for e in ours["items"]}
    assert {"audit.visit.done", "audit.action.added", "audit.export.made"} <= types
    visit_actor = next(
        e["actor"]
        for e in ours["items"]
        if e["type"] == "audit.visit.done" and e["facility_id"] == facility_id
    )
    mine = [e for e in reviews["items"] if e["facility_id"] == facility_id]
    assert len(mine) == 2 and {e["actor"] for e in mine} == {visit_actor}


GIRL_AND_BABY = [
    {"sex": "F", "age": 16, "role": "victim", "nationality": "MEX"},
    {"sex": "M", "age": 0, "role": "accompanying_child", "nationality": "MEX"},
]


async def test_a_girl_of_16_and_her_baby_are_taken_in_together_at_2_am(demo_app):
    """The mission's example: at 2 a.m. a FEVIMTRA prosecutor rescues a 16-year-old girl
    and her baby; the first place Mexico City offers takes both, under a signed agreement,
    and the state DIF of CDMX (not the national one) answers for the child protection."""
    from canaliza.seed import load_demo_into_app

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
        # the national DIF's officer is not the one who answers for a minor in CDMX: to her the
        # referral does not exist (one 404 whether it exists or not, no existence oracle)
        national = await client.post(
            f"/api/v1/referrals/{referral_id}/obligations/{obligation['id']}/fulfil",
            json={"note": "atendido"},
            headers=await _login(client, "dif"),
        )
        assert national.status_code == 404, national.text
        assert national.json()["error"] == "referral_not_found"
        done = await client.post(
            f"/api/v1/referrals/{referral_id}/obligations/{obligation['id']}/fulfil",
            json={"note": "Procuraduría de Protección notificada"},
            headers=await _login(client, "dif_cdmx"),
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "fulfilled"

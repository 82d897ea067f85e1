"""The historical referrals imported in bulk into the real services (one process, SQLite):
the rows arrive in their final states, the audit statistics count them, a second import
changes nothing, and the loaded data keeps every invariant of capacity and referral."""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from canaliza.demo import INM
from canaliza.seed import Credentials, generate, import_history, load_demo_into_app
from canaliza.seed import figures as fig
from canaliza.seed.history import HISTORY_EVENT, referral_rows
from canaliza.seed.roster import inm_office_id
from services.settings import get_settings
from tests.conftest import running

pytestmark = pytest.mark.slow

VALID_STATUSES = {
    "draft", "sent", "accepted", "declined", "expired", "in_transit", "admitted", "discharged",
    "cancelled",
}  # fmt: skip


@pytest.fixture
def demo_app(all_services_app):
    return all_services_app


def _service() -> Credentials:
    s = get_settings()
    assert s.service_client_id and s.service_client_secret
    return Credentials(client_id=s.service_client_id, client_secret=s.service_client_secret)


def _admin() -> Credentials:
    return Credentials(username="admin", password=get_settings().demo_password)


async def _token(client, **form) -> dict[str, str]:
    resp = await client.post("/auth/token", data=form)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_history_is_imported_counted_and_not_duplicated(demo_app):
    from capacity.database import db as capacity_db
    from capacity.ledger import ledger_mismatches
    from capacity.models import FacilityLocation, Pool
    from referral.database import db as referral_db
    from referral.models import (
        Obligation,
        PersonIdentity,
        Referral,
        ReferralHistory,
        ReferralPerson,
    )

    dataset = generate("demo", 2026)
    report = await load_demo_into_app(demo_app)
    assert not report.failures, report.failures[:5]
    history = report.history
    assert history is not None
    assert history.imported == len(dataset.referrals) == 600
    assert history.audit_recorded is True
    # a referral left "sent" long past its answer deadline is stored as expired
    assert history.expired == sum(r["status"] == "sent" for r in dataset.referrals) > 0

    # --- referral: rows in their final states, with every step timed ------------------------
    with referral_db.new_session(write=False) as session:
        stored = {r.id: r for r in session.execute(select(Referral)).scalars()}
        steps = Counter(
            rid for rid in session.execute(select(col(ReferralHistory.referral_id))).scalars()
        )
        people = session.execute(select(func.count()).select_from(ReferralPerson)).scalar_one()
        dif = session.execute(
            select(func.count())
            .select_from(Obligation)
            .where(col(Obligation.kind) == "dif_child_protection")
        ).scalar_one()
        inm = {
            rid: office
            for rid, office in session.execute(
                select(col(Obligation.referral_id), col(Obligation.institution_id)).where(
                    col(Obligation.kind) == "inm_migration_status"
                )
            )
        }
    assert set(stored) == {r["id"] for r in dataset.referrals}
    assert people == dataset.counts()["people"]
    for row in dataset.referrals:
        r = stored[row["id"]]
        assert r.status in VALID_STATUSES
        expected = "expired" if row["status"] == "sent" else row["status"]
        assert r.status == expected
        assert r.version == steps[r.id]  # one history row per version
        assert r.outcome == row["outcome"]
    minors = sum(
        any(p["age"] is None or p["age"] < 18 for p in r["people"]) for r in dataset.referrals
    )
    assert dif == minors  # the law's obligations derived as for a live referral
    # a foreign victim's INM obligation goes to the office of the referral's state: the
    # national INM in Mexico City, its regional office elsewhere -- whatever order the
    # institutions were created in (they are loaded concurrently)
    assert inm and all(
        office == inm_office_id(stored[rid].state or "") for rid, office in inm.items()
    )
    assert any(office == INM.id for office in inm.values())

    # --- the stored people follow the documented figures (600 victims: wide tolerance,
    # about 3.5 standard errors; the national-scale generator test is tight) and are no one
    with referral_db.new_session(write=False) as session:
        victims = list(
            session.execute(
                select(ReferralPerson).where(col(ReferralPerson.role) == "victim")
            ).scalars()
        )
        names = session.execute(select(func.count()).select_from(PersonIdentity)).scalar_one()
    n = len(victims)
    assert n == 600
    assert sum(v.sex == "F" for v in victims) / n == pytest.approx(fig.FEMALE_SHARE, abs=0.05)
    known = [v for v in victims if v.age is not None]
    assert sum(v.age < 18 for v in known) / len(known) == pytest.approx(fig.MINOR_SHARE, abs=0.06)
    foreign = [v for v in victims if v.nationality != "MEX"]
    assert len(foreign) / n == pytest.approx(fig.FOREIGN_SHARE, abs=0.045)
    assert Counter(v.nationality for v in foreign).most_common(1)[0][0] == "HND"  # INM: 47 %
    sexual = sum(v.offences == ["art10-III"] for v in victims) / n
    assert sexual == pytest.approx(0.70, abs=0.06)
    assert names == 0  # no name was imported: pseudonyms only
    assert all(re.fullmatch(r"\w+ \d{3}", v.pseudonym or "") for v in victims)

    async with running(demo_app) as client:
        auditor = await _token(
            client,
            grant_type="password",
            username="auditor",
            password=get_settings().demo_password,
            client_id="canaliza-cli",
        )
        # --- SEGOB's roster as the seeds describe it (003:517): registered through the
        # registration API, visits recorded on their dates (the projection follows the bus)
        loaded = report.ids  # the generator's facility ids → the ids the roster assigned
        registered = {loaded.get(r["facility_id"], r["facility_id"]) for r in dataset.registrations}
        for _ in range(100):
            roster = (await client.get("/api/v1/roster", headers=auditor)).json()["items"]
            if sum(i["registration_status"] == "registered" for i in roster) == len(registered):
                break
            await asyncio.sleep(0.1)
        assert {i["facility_id"] for i in roster if i["registration_status"] == "registered"} == (
            registered
        )
        visits = {i["facility_id"]: i["visits_done"] for i in roster if i["visits_done"]}
        assert sum(visits.values()) == len(dataset.visits) == 8 and len(visits) == 6
        assert report.created["registrations"] == 10 and report.created["visits"] == 8
        reloaded = await load_demo_into_app(demo_app)  # nothing registered or visited twice
        assert reloaded.created["registrations"] == reloaded.created["visits"] == 0

        # --- audit statistics: totals computed from the imported rows -------------------------
        resp = await client.get("/api/v1/reports/people?format=json", headers=auditor)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        rows = body["rows"] if isinstance(body, dict) else body
        # people, not referrals: a group declined and referred again counts once (ADR 0019)
        persons = {p["person_key"]: p for r in dataset.referrals for p in r["people"]}
        assert len(persons) < dataset.counts()["people"]  # the seed re-refers some groups
        referred = sum(int(r["referred"]) for r in rows)
        assert referred == len(persons)
        by_sex: Counter[str] = Counter()
        for r in rows:
            by_sex[r["sex"]] += int(r["referred"])
        assert by_sex["F"] == sum(p["sex"] == "F" for p in persons.values())

        events = await client.get(
            "/api/v1/audit/events", params={"type": HISTORY_EVENT}, headers=auditor
        )
        before = events.json()["total"]
        assert before >= 1

        # --- idempotent: importing again stores and announces nothing ---------------------------
        result, again = await import_history(
            dataset,
            app=demo_app,
            credentials=_service(),
            audit_credentials=_admin(),
            facility_ids=report.ids,
        )
        assert again.failures == []
        assert (again.imported, again.already_present) == (0, 600)
        assert result["rows"] == 600
        events = await client.get(
            "/api/v1/audit/events", params={"type": HISTORY_EVENT}, headers=auditor
        )
        assert events.json()["total"] == before

        # --- only a service writes the past; a referral outside any agreement is refused -------
        row = next(referral_rows(dataset, report.ids))
        admin = await _token(
            client,
            grant_type="password",
            username="admin",
            password=get_settings().demo_password,
            client_id="canaliza-cli",
        )
        fresh = {**row, "id": "00000000-0000-4000-8000-000000000001"}
        denied = await client.post(
            "/api/v1/referrals/import", json={"referrals": [fresh]}, headers=admin
        )
        assert denied.status_code == 403, denied.text
        service = await _token(
            client,
            grant_type="client_credentials",
            client_id=_service().client_id,
            client_secret=_service().client_secret,
        )
        stray = {**fresh, "receiving_institution_id": next(
            i["id"] for i in dataset.institutions if i["type"] == "sre"
        ), "agreement_number": None}  # fmt: skip
        refused = await client.post(
            "/api/v1/referrals/import", json={"referrals": [stray]}, headers=service
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "history_rejected"
        out_of_order = {**fresh, "sent_at": "2000-01-01T00:00:00Z"}
        bad = await client.post(
            "/api/v1/referrals/import", json={"referrals": [out_of_order]}, headers=service
        )
        assert bad.status_code == 422
        assert set(bad.json()) >= {"error", "detail"}
        with referral_db.new_session(write=False) as session:
            assert session.get(Referral, fresh["id"]) is None  # nothing half written

    # --- capacity: counts never negative, each pool equals the replay of its ledger -------------
    with capacity_db.new_session(write=False) as session:
        pools = list(session.execute(select(Pool)).scalars())
        assert ledger_mismatches(session) == []
    assert len(pools) == len(dataset.pools)
    for p in pools:
        assert min(p.total, p.occupied, p.held, p.out_of_service) >= 0
        assert p.total - p.occupied - p.held - p.out_of_service >= 0
    assert sum(p.occupied for p in pools) == sum(p["occupied"] for p in dataset.pools)
    with capacity_db.new_session(write=False) as session:
        addresses = list(session.execute(select(col(FacilityLocation.address))).scalars())
    assert len(addresses) == len(dataset.facilities)
    assert all(a.startswith("Calle Ficticia ") for a in addresses)  # no real address

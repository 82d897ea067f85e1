"""Migration routes, humanitarian visas per victims identified, and services provided in the
monthly report: figures worked out by hand from events (ADR 0022)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from audit.main import consume
from services.events import Event
from tests.audit.test_monthly import _event, _facility, _victim
from tests.conftest import running


def _route(person: str, referral: str, nationality: str, **over: Any) -> None:
    consume(
        Event(
            type="referral.migration_route.recorded",
            aggregate_type="referral",
            aggregate_id=referral,
            occurred_at=datetime(2026, 4, 3, 12, tzinfo=UTC),
            payload={
                "referral_id": referral, "person_id": person, "route": "humanitarian_regularisation",
                "status": "in_process", "nationality": nationality, "sex": "F",
                "age_group": "adults", "state": "07", "institution_id": "inm-chis",
                "humanitarian_visa_issued": False, "consular_contact_consent": None,
                "migration_station_days": None, "return_country": None,
                "risk_assessment_recorded": False, **over,
            },
        )
    )  # fmt: skip


def _service(referral: str, service: str, day: str, facility: str = "fac-1") -> None:
    consume(
        Event(
            type="referral.service.provided",
            aggregate_type="referral",
            aggregate_id=referral,
            payload={"referral_id": referral, "facility_id": facility, "service": service,
                     "provided_on": day},
        )
    )  # fmt: skip


def _fixture() -> None:
    # Three Honduran victims and one Guatemalan girl identified, one Mexican: not counted.
    _event("r1", "admitted", (4, 1), [_victim("HND", [])] * 3)
    _event("r2", "admitted", (4, 1), [_victim("GTM", []), _victim("MEX", [])])
    # p1 first in process, then granted with a visa: counted once, as it stands now.
    _route("p1", "r1", "HND")
    _route("p1", "r1", "HND", status="granted", humanitarian_visa_issued=True,
           consular_contact_consent=True, migration_station_days=12)  # fmt: skip
    _route("p2", "r1", "HND", route="asylum", status="requested")
    _route("p3", "r2", "GTM", route="assisted_return", status="completed", age_group="minors",
           return_country="GTM", risk_assessment_recorded=True)  # fmt: skip


async def test_routes_and_visas_per_victims_identified(audit_app, auth_headers):
    _fixture()
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/migration-routes", headers=h)
        assert r.status_code == 200, r.text
        rows = {(x["route"], x["status"]): x for x in r.json()["rows"]}
        assert set(rows) == {
            ("humanitarian_regularisation", "granted"),
            ("asylum", "requested"),
            ("assisted_return", "completed"),
        }
        granted = rows[("humanitarian_regularisation", "granted")]
        assert (granted["people"], granted["visas_issued"], granted["consular_consent"],
                granted["held_in_station"]) == (1, 1, 1, 1)  # fmt: skip
        r = await client.get("/api/v1/reports/migration-routes?by=nationality", headers=h)
        assert {x["nationality"]: x["people"] for x in r.json()["rows"]} == {"GTM": 1, "HND": 2}

        r = await client.get("/api/v1/reports/humanitarian-visas", headers=h)
        assert r.status_code == 200, r.text
        visas = {x["nationality"]: x for x in r.json()["rows"]}
        assert set(visas) == {"HND", "GTM"}  # a Mexican victim is not the INM's
        assert (visas["HND"]["victims_identified"], visas["HND"]["routes_recorded"],
                visas["HND"]["visas_issued"]) == (3, 2, 1)  # fmt: skip
        assert (visas["GTM"]["victims_identified"], visas["GTM"]["visas_issued"]) == (1, 0)
        # observers get the small counts suppressed
        r = await client.get("/api/v1/reports/humanitarian-visas", headers=auth_headers("observer"))
        assert r.status_code == 200 and r.json()["rows"] == []
        r = await client.get("/api/v1/reports/migration-routes?by=offence", headers=h)
        assert r.status_code == 422 and "migration-routes" in r.json()["detail"]


async def test_services_provided_counted_in_the_monthly_report(audit_app, auth_headers):
    _facility()
    _event("rA", "admitted", (3, 5), [_victim("MEX", [])])
    _service("rA", "legal", "2026-03-06")
    _service("rA", "legal", "2026-04-01")
    _service("rA", "psychological", "2026-04-02")
    _service("rA", "job_training", "2026-04-09")
    _service("rX", "legal", "2026-04-09", facility="other")  # another facility's
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/roster/fac-1/monthly-report?year=2026", headers=auth_headers("segob_auditor")
        )
        assert r.status_code == 200, r.text
        provided = r.json()["sections"][-1]
        assert provided["title"] == "Servicios proporcionados, por tipo"
        rows = {x["label"]: x["values"][2:4] for x in provided["rows"]}
        assert rows == {
            "Asesoría jurídica": [1, 1],
            "Atención psicológica": [0, 1],
            "Capacitación para el trabajo": [0, 1],
        }
        assert provided["total"]["values"][2:4] == [1, 3] and provided["total"]["total"] == 4


async def test_an_old_repatriated_outcome_reads_as_assisted_return(audit_app, auth_headers):
    _event("old", "discharged", (4, 20), [_victim("HND", [])], outcome="repatriated")
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/people?by=outcome", headers=auth_headers("segob_auditor")
        )
        assert r.status_code == 200, r.text
        assert [(x["outcome"], x["discharged"]) for x in r.json()["rows"]] == [
            ("assisted_return", 1)
        ]

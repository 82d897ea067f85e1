"""SEGOB's roster flags stays near and past their facility's maximum (ADR 0022)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from audit.database import db
from audit.main import consume
from audit.projection import rebuild
from audit.roster import roster
from services.clock import utcnow
from services.events import Event
from tests.conftest import running


def _facility(fid: str, max_stay_days: int | None) -> None:
    consume(
        Event(
            type="capacity.facility.created",
            aggregate_type="facility",
            aggregate_id=fid,
            aggregate_version=1,
            payload={"facility_id": fid, "name": f"Refugio {fid}", "kind": "refugio",
                     "status": "active", "registration_status": "registered",
                     "operator_institution_id": "ngo", "state": "09",
                     "municipality": "Cuauhtémoc", "max_stay_days": max_stay_days},
        )
    )  # fmt: skip


def _referral(rid: str, step: str, fid: str, days_ago: int, **payload: Any) -> None:
    consume(
        Event(
            type=step,
            aggregate_type="referral",
            aggregate_id=rid,
            occurred_at=utcnow() - timedelta(days=days_ago),
            payload={"referral_id": rid, "facility_id": fid, **payload},
        )
    )


def _stays() -> None:
    _facility("fac-90", 90)
    _facility("fac-none", None)
    admit = "referral.referral.admit"
    _referral("over", admit, "fac-90", 100, status="admitted")
    _referral("near", admit, "fac-90", 80, status="admitted")  # 10 days left
    _referral("extended", admit, "fac-90", 100, status="admitted")
    _referral("extended", "referral.stay.extended", "fac-90", 5, days=30, reason="risk")
    _referral("left", admit, "fac-90", 200, status="admitted")
    _referral("left", "referral.referral.discharge", "fac-90", 60, status="discharged")
    _referral("no-max", admit, "fac-none", 400, status="admitted")


def _line(rows: list[dict[str, Any]], fid: str) -> dict[str, Any]:
    return next(r for r in rows if r["facility_id"] == fid)


async def test_stays_near_and_past_the_maximum_are_flagged(audit_app, auth_headers):
    _stays()
    async with running(audit_app) as client:
        r = await client.get("/api/v1/roster", headers=auth_headers("segob_auditor"))
        assert r.status_code == 200, r.text
        line = _line(r.json()["items"], "fac-90")
        assert (line["stays_near_limit"], line["stays_over_limit"]) == (1, 1)
        assert {"stay_limit_near", "stay_over_limit"} <= set(line["flags"])
        assert "Estancias que rebasan su máximo sin prórroga" in line["flag_labels"]
        # a facility without a recorded maximum is never flagged
        free = _line(r.json()["items"], "fac-none")
        assert free["stays_over_limit"] == 0 and "stay_over_limit" not in free["flags"]
        r = await client.get(
            "/api/v1/roster?flag=stay_over_limit", headers=auth_headers("segob_auditor")
        )
        assert [x["facility_id"] for x in r.json()["items"]] == ["fac-90"]
        detail = await client.get("/api/v1/roster/fac-90", headers=auth_headers("segob_auditor"))
        assert detail.json()["stays_over_limit"] == 1
    # the projection rebuilt from the trail alone says the same
    with db.unit_of_work() as session:
        rebuild(session)
        again = _line(roster(session), "fac-90")
    assert (again["stays_near_limit"], again["stays_over_limit"]) == (1, 1)


async def test_imported_history_stays_count_from_their_creation_day(audit_app, auth_headers):
    _facility("fac-90", 90)
    long_ago = (utcnow() - timedelta(days=120)).date().isoformat()
    recent = (utcnow() - timedelta(days=10)).date().isoformat()
    rows = [
        {"referral_id": "h1", "status": "admitted", "facility_id": "fac-90", "created_on": long_ago},
        {"referral_id": "h2", "status": "admitted", "facility_id": "fac-90", "created_on": recent},
        {"referral_id": "h3", "status": "discharged", "facility_id": "fac-90",
         "created_on": long_ago},
    ]  # fmt: skip
    for _ in range(2):  # the same batch twice (a retried import) counts each stay once
        consume(
            Event(
                type="referral.history.imported",
                aggregate_type="referral_history",
                aggregate_id="batch-1",
                payload={"referrals": rows},
            )
        )
    async with running(audit_app) as client:
        r = await client.get("/api/v1/roster/fac-90", headers=auth_headers("segob_auditor"))
        assert r.status_code == 200, r.text
        assert (r.json()["stays_near_limit"], r.json()["stays_over_limit"]) == (0, 1)

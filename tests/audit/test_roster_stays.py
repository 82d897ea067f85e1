"""SEGOB's roster flags stays near and past their facility's maximum (ADR 0022)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from audit.database import db
from audit.main import consume
from audit.models import RosterFacility, RosterStay
from audit.projection import rebuild
from audit.roster import roster
from audit.roster_state import refresh
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


def _kept_stays() -> tuple[dict[str, tuple[Any, Any]], dict[str, Any]]:
    with db.unit_of_work(write=False) as session:
        facs = {
            f.facility_id: (f.stay_over_first_at, f.stay_over_last_at)
            for f in session.execute(select(RosterFacility)).scalars()
        }
        stays = {s.referral_id: s.over_at for s in session.execute(select(RosterStay)).scalars()}
    return facs, stays


async def test_imported_stays_keep_what_a_full_refresh_computes(audit_app):
    """A history batch adds its stays without re-reading the facilities' other stays: the
    kept columns are what recomputing every stay of every facility gives."""
    _facility("fac-30", 30)
    _facility("fac-90", 90)
    _facility("fac-none", None)
    _referral("live", "referral.referral.admit", "fac-30", 10, status="admitted")
    day = utcnow().date()
    for batch in range(4):
        rows = [
            {"referral_id": f"b{batch}-{i}", "status": "admitted" if i % 4 else "discharged",
             "facility_id": ("fac-30", "fac-90", "fac-none", "not-on-roster")[i % 4 if i % 5 else 1],
             "created_on": (day - timedelta(days=7 * i + (11, 22, 0, 5)[batch])).isoformat()}
            for i in range(40)
        ]  # fmt: skip
        consume(
            Event(
                type="referral.history.imported",
                aggregate_type="referral_history",
                aggregate_id=f"batch-{batch}",
                payload={"referrals": rows},
            )
        )
    facs, stays = _kept_stays()
    assert facs["fac-30"][0] is not None and facs["fac-90"][1] is not None
    assert facs["fac-none"] == (None, None)
    assert len(stays) == 1 + 4 * 30
    with db.unit_of_work() as session:
        refresh(session, list(facs))
    assert _kept_stays() == (facs, stays)

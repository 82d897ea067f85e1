"""Issue 17 (ADR 0021) in the statistics: urgent placements without agreement by sender,
receiver and month; people by detection source; a transferred person counted once."""

from __future__ import annotations

from typing import Any

from audit.main import consume
from services.events import Event
from tests.audit.conftest import EVENT_OF_STATUS
from tests.conftest import running

FGR, NGO, OTHER = "inst-fgr", "inst-ngo", "inst-other"


def _referral(rid: str, status: str, **payload: Any) -> None:
    people = payload.pop("people", [{"sex": "F", "age_group": "18-59", "role": "victim"}])
    consume(
        Event(
            type=f"referral.referral.{EVENT_OF_STATUS[status]}",
            aggregate_type="referral",
            aggregate_id=rid,
            payload={
                "referral_id": rid,
                "status": status,
                "sending_institution_id": FGR,
                "receiving_institution_id": NGO,
                "facility_id": "fac-1",
                "people": people,
                **payload,
            },
        )
    )


def _placed(rid: str, sender: str, receiver: str) -> None:
    consume(
        Event(
            type="referral.placement.without_agreement",
            aggregate_type="referral",
            aggregate_id=rid,
            payload={
                "referral_id": rid,
                "sending_institution_id": sender,
                "receiving_institution_id": receiver,
                "facility_id": "fac-1",
                "state": "09",
                "previous_referral_id": None,
            },
        )
    )


async def test_urgent_placements_without_agreement_by_sender_receiver_and_month(
    audit_app, auth_headers
):
    for i in range(3):
        _referral(f"u-{i}", "sent", without_agreement=True)
        _placed(f"u-{i}", FGR, NGO)
    _referral("u-0", "admitted", without_agreement=True)
    _placed("u-9", NGO, OTHER)
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/urgent-without-agreement", headers=auth_headers("segob_auditor")
        )
        assert r.status_code == 200, r.text
        rows = {
            (x["sending_institution_id"], x["receiving_institution_id"]): x
            for x in r.json()["rows"]
        }
        assert rows[(FGR, NGO)]["placements"] == 3 and rows[(FGR, NGO)]["admitted"] == 1
        assert rows[(NGO, OTHER)]["placements"] == 1 and rows[(NGO, OTHER)]["admitted"] == 0
        assert all(len(x["period"]) == 7 for x in r.json()["rows"])  # YYYY-MM
        observer = await client.get(
            "/api/v1/reports/urgent-without-agreement", headers=auth_headers("observer")
        )
        assert observer.status_code == 200
        assert (
            all(x["placements"] == "<5" for x in observer.json()["rows"])
            or not (observer.json()["rows"])
        )
        bad = await client.get(
            "/api/v1/reports/urgent-without-agreement",
            params={"by": "sex"},
            headers=auth_headers("segob_auditor"),
        )
        assert bad.status_code == 422


async def test_people_by_detection_source_with_not_recorded_as_si(audit_app, auth_headers):
    _referral("d-1", "admitted", detection_source="hotline")
    _referral("d-2", "sent", detection_source="hotline")
    _referral("d-3", "sent", detection_source="inspection")
    _referral("d-4", "sent")  # an event from before the field: S.I.
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/people",
            params={"by": "detection_source"},
            headers=auth_headers("segob_auditor"),
        )
        assert r.status_code == 200, r.text
        got = {x["detection_source"]: (x["referred"], x["admitted"]) for x in r.json()["rows"]}
        assert got == {"hotline": (2, 1), "inspection": (1, 0), "S.I.": (1, 0)}


async def test_a_transferred_person_counts_once_where_her_path_stands(audit_app, auth_headers):
    # An onward transfer carries the people's keys: the same two people (ADR 0019, 0021).
    mother_and_son = [
        {"sex": "F", "age_group": "18-59", "role": "victim", "person_key": "a" * 32},
        {"sex": "M", "age_group": "0-12", "role": "accompanying_child", "person_key": "b" * 32},
    ]
    _referral("p-1", "admitted", people=mother_and_son, detection_source="operation")
    # A transfer declined by the first place asked: she stays where she is.
    _referral(
        "p-2",
        "declined",
        people=mother_and_son,
        sending_institution_id=NGO,
        receiving_institution_id=OTHER,
        previous_referral_id="p-1",
    )
    async with running(audit_app) as client:

        async def people() -> list[dict[str, Any]]:
            r = await client.get(
                "/api/v1/reports/people",
                params={"by": "receiving_institution_id,detection_source"},
                headers=auth_headers("segob_auditor"),
            )
            assert r.status_code == 200, r.text
            return [
                {k: x[k] for k in ("receiving_institution_id", "referred", "admitted")}
                for x in r.json()["rows"]
            ]

        assert await people() == [
            {"receiving_institution_id": NGO, "referred": 2, "admitted": 2},
        ]
        # Transferred and admitted elsewhere: still two people, now where they are.
        _referral(
            "p-3",
            "admitted",
            people=mother_and_son,
            sending_institution_id=NGO,
            receiving_institution_id=OTHER,
            previous_referral_id="p-1",
        )
        _referral("p-1", "discharged", people=mother_and_son, outcome="transferred_onward")
        assert await people() == [
            {"receiving_institution_id": OTHER, "referred": 2, "admitted": 2},
        ]


def _reviewed(fid: str, version: int, *, pending: list[str], due_on: str | None) -> None:
    consume(
        Event(
            type="capacity.facility.registration_reviewed",
            aggregate_type="facility",
            aggregate_id=fid,
            aggregate_version=version,
            payload={
                "facility_id": fid,
                "facility_name": "Refugio con observaciones",
                "kind": "refugio",
                "status": "active",
                "registration_status": "registered",
                "operator_institution_id": "casa-mercedes",
                "state": "09",
                "municipality": "Cuauhtémoc",
                "outcome": "registered",
                "observations": "Rampa pendiente.",
                "unmet": pending,
                "checklist": [
                    {"item": "accessibility", "met": not pending},
                    {"item": "confidentiality", "met": True},
                ],
                "pending": pending,
                "due_on": due_on,
            },
        )
    )


async def test_the_roster_flags_a_registration_with_observations_until_met(audit_app, auth_headers):
    from audit.database import db
    from audit.projection import rebuild

    _reviewed("fac-obs", 2, pending=["accessibility"], due_on="2000-01-31")
    headers = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/roster/fac-obs", headers=headers)
        assert r.status_code == 200, r.text
        entry = r.json()
        assert {"registered_with_observations", "observations_overdue"} <= set(entry["flags"])
        assert "unregistered_active" not in entry["flags"]
        assert entry["registration_pending"] == ["accessibility"]
        assert entry["registration_due_on"] == "2000-01-31"
        (step,) = entry["registration_history"]
        assert step["type"] == "reviewed" and step["due_on"] == "2000-01-31"
        assert {"item": "accessibility", "met": False} in step["checklist"]
        flagged = await client.get(
            "/api/v1/roster", params={"flag": "registered_with_observations"}, headers=headers
        )
        assert [f["facility_id"] for f in flagged.json()["items"]] == ["fac-obs"]
        with db.new_session() as s:  # the flag is rebuilt from the trail alone
            rebuild(s)
            s.commit()
        again = (await client.get("/api/v1/roster/fac-obs", headers=headers)).json()
        assert "registered_with_observations" in again["flags"]
        _reviewed("fac-obs", 3, pending=[], due_on=None)
        met = (await client.get("/api/v1/roster/fac-obs", headers=headers)).json()
        assert not {"registered_with_observations", "observations_overdue"} & set(met["flags"])
        assert [s["pending"] for s in met["registration_history"]] == [["accessibility"], []]

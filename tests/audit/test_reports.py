"""Statistics from events: figures worked out by hand, and small-count suppression."""

from __future__ import annotations

import io

from audit.main import consume
from services.events import Event
from tests.audit.conftest import EVENT_OF_STATUS
from tests.audit.exported import exported_rows
from tests.conftest import running

INM = "inst-inm"
OSC = "inst-osc"
GOV = "inst-dif"


def _inst(iid: str, kind: str) -> None:
    consume(
        Event(
            type="referral.institution.created",
            aggregate_type="institution",
            aggregate_id=iid,
            payload={"id": iid, "name": iid, "type": kind, "state": "CHP"},
        )
    )


def _referral(rid: str, people: list[tuple[str, str]], status: str, receiver: str) -> None:
    consume(
        Event(
            type=f"referral.referral.{EVENT_OF_STATUS[status]}",
            aggregate_type="referral",
            aggregate_id=rid,
            payload={
                "referral_id": rid,
                "status": status,
                "sending_institution_id": INM,
                "receiving_institution_id": receiver,
                "facility_id": "fac-1",
                "people": [
                    {"sex": s, "age_group": a, "nationality": "HND", "role": "direct"}
                    for s, a in people
                ],
            },
        )
    )


def _inm_fixture() -> None:
    """133 foreign victims: 93 women, 17 girls, 17 men, 6 boys; 21 OSC, 8 government, 104 S.I."""
    _inst(INM, "government")
    _inst(OSC, "ngo")
    _inst(GOV, "government")
    people = (
        [("female", "18-59")] * 93
        + [("female", "0-12")] * 17
        + [("male", "18-59")] * 17
        + [("male", "0-12")] * 6
    )
    assert len(people) == 133
    # OSC: 21 people in three referrals, the first sent then admitted (two events).
    _referral("r-osc-1", people[0:10], "sent", OSC)
    _referral("r-osc-1", people[0:10], "admitted", OSC)
    _referral("r-osc-2", people[10:20], "discharged", OSC)
    _referral("r-osc-3", people[20:21], "admitted", OSC)
    _referral("r-gov-1", people[21:29], "admitted", GOV)
    # 104 people whose referral never reached a shelter.
    _referral("r-si-1", people[29:100], "sent", OSC)
    _referral("r-si-2", people[100:133], "expired", GOV)


async def test_inm_fixture_gives_21_8_104(audit_app, auth_headers):
    _inm_fixture()
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/referral-outcomes", headers=auth_headers("segob_auditor")
        )
        assert r.status_code == 200
        (row,) = r.json()["rows"]
        assert row == {
            "sending_institution_id": INM,
            "civil_society": 21,
            "government": 8,
            "no_information": 104,
            "total": 133,
        }


async def test_small_counts_suppressed_in_csv_and_for_observers(audit_app, auth_headers):
    _inst(OSC, "ngo")
    _referral("r-1", [("female", "18-59")] * 3, "admitted", OSC)
    _referral("r-2", [("female", "18-59")] * 7, "sent", OSC)
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/referral-outcomes", headers=auth_headers("observer"))
        (row,) = r.json()["rows"]
        # Counts in bands of five (issue 20, item 6): 3 -> "<5", 7 -> 5, the total 10 -> 10;
        # no total needs withholding, since 10 - 5 leaves 0-9, not the 3.
        assert row["civil_society"] == "<5" and row["no_information"] == 5
        assert row["total"] == 10
        r = await client.get(
            "/api/v1/reports/referral-outcomes",
            params={"format": "csv"},
            headers=auth_headers("segob_auditor"),
        )
        assert r.headers["content-type"].startswith("text/csv")
        line, total = exported_rows(r.text)
        assert total["Institución que canaliza"] == "Total" and total["Total"] == "10"
        assert total["Sin información"] == "5" and total["A sociedad civil"] == "<5"
        assert line["A sociedad civil"] == "<5" and line["A instituciones de gobierno"] == "<5"
        assert line["Total"] == "10"  # 0 is in 0-4 above
        r = await client.get(
            "/api/v1/reports/referral-outcomes", headers=auth_headers("segob_auditor")
        )
        assert r.json()["rows"][0]["civil_society"] == 3
        r = await client.get(
            "/api/v1/reports/referral-outcomes", headers=auth_headers("dif_officer")
        )
        assert r.status_code == 403


async def test_unmet_demand_and_every_format(audit_app, auth_headers):
    import openpyxl

    for i in range(6):
        consume(
            Event(
                type="capacity.search.unmet",
                aggregate_type="unmet_request",
                aggregate_id=f"u-{i}",
                payload={"sex": "male", "age_group": "18-59", "state": "CHP", "group_size": 1},
            )
        )
    consume(
        Event(
            type="capacity.search.unmet",
            aggregate_type="unmet_request",
            aggregate_id="u-x",
            payload={"sex": "female", "age_group": "13-17", "group_size": 2},
        )
    )
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/unmet-demand", headers=h)
        assert r.json()["rows"] == [
            {
                "sex": "female",
                "age_group": "13-17",
                "state": "S.I.",
                "requests": 1,
                "people": 2,
            },
            {
                "sex": "male",
                "age_group": "18-59",
                "state": "CHP",
                "requests": 6,
                "people": 6,
            },
        ]
        for name in ("unmet-demand", "referral-outcomes"):
            r = await client.get(f"/api/v1/reports/{name}", params={"format": "xlsx"}, headers=h)
            assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
            wb = openpyxl.load_workbook(io.BytesIO(r.content))
            assert wb.active.cell(1, 1).value in ("Sexo", "Institución que canaliza")
            assert "«<5» es una cifra de 0 a 4" in wb["Notas"].cell(3, 1).value
            r = await client.get(f"/api/v1/reports/{name}", params={"format": "pdf"}, headers=h)
            assert r.headers["content-type"] == "application/pdf", r.text
            assert r.content.startswith(b"%PDF")
        r = await client.get("/api/v1/reports/unmet-demand", params={"format": "csv"}, headers=h)
        # A row of nothing but "<5" is not listed in an export (its listing would tell that
        # someone is there); the six men are banded to 5.
        assert "female,13-17" not in r.text and "male,18 a 59 años,CHP,5,5\r\n" in r.text
        r = await client.get("/api/v1/audit/events", params={"type": "audit.export"}, headers=h)
        assert r.json()["total"] == 5
        assert {i["entry"]["payload"]["format"] for i in r.json()["items"]} == {
            "xlsx",
            "pdf",
            "csv",
        }
        r = await client.get("/api/v1/audit/verify", headers=h)
        assert r.json()["ok"] is True
        r = await client.get("/api/v1/reports/nope", headers=h)
        assert r.status_code == 404


async def test_agreements_refused_counted_per_pair(audit_app, auth_headers):
    for i in range(7):
        consume(
            Event(
                type="referral.agreement.refused",
                aggregate_type="referral",
                aggregate_id=f"r-{i}",
                payload={
                    "referral_id": f"r-{i}",
                    "sending_institution_id": INM,
                    "receiving_institution_id": OSC if i < 5 else GOV,
                    "missing": [],
                },
            )
        )
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/agreements-refused", headers=auth_headers("observer"))
        # The pair with 2 refusals is all "<5", so it is not listed to an observer.
        assert r.json()["rows"] == [
            {"sending_institution_id": INM, "receiving_institution_id": OSC, "refusals": 5},
        ]
        assert r.json()["totals"]["refusals"] == 5  # the exact 7, banded


async def test_occupancy_uses_each_pools_last_snapshot_per_month(audit_app, auth_headers):
    from datetime import UTC, datetime

    def snap(pool: str, day: int, total: int, occupied: int) -> None:
        consume(
            Event(
                type="capacity.pool.changed",
                aggregate_type="pool",
                aggregate_id=pool,
                occurred_at=datetime(2026, 3, day, tzinfo=UTC),
                payload={
                    "pool_id": pool,
                    "facility_id": "f",
                    "state": "CHP",
                    "total": total,
                    "occupied": occupied,
                },
            )
        )

    snap("p1", 1, 10, 2)
    snap("p1", 20, 10, 8)  # supersedes the first
    snap("p2", 5, 6, 6)
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/occupancy", headers=auth_headers("segob_auditor"))
        assert r.json()["rows"] == [
            {
                "period": "2026-03",
                "state": "CHP",
                "beds": 16,
                "occupied": 14,
                "utilisation_pct": 87.5,
            }
        ]


async def test_people_disaggregated_from_inm_fixture(audit_app, auth_headers):
    _inm_fixture()
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/people", headers=auth_headers("segob_auditor"))
        rows = {(x["sex"], x["age_group"]): x for x in r.json()["rows"]}
        assert sum(x["referred"] for x in rows.values()) == 133
        assert rows[("female", "18-59")]["referred"] == 93
        assert rows[("female", "0-12")]["referred"] == 17
        assert rows[("male", "18-59")]["referred"] == 17
        assert rows[("male", "0-12")]["referred"] == 6
        # 21 + 8 reached a shelter; 10 of them (r-osc-2) were discharged.
        assert sum(x["admitted"] for x in rows.values()) == 29
        assert sum(x["discharged"] for x in rows.values()) == 10


async def test_bulk_import_events_are_folded_row_by_row(audit_app, auth_headers):
    """One history-import entry lists many referrals, one roster-import entry many pools:
    the reports count them like per-referral and per-pool events, and a later lifecycle
    event of an imported referral supersedes its imported state."""
    from datetime import UTC, datetime

    _inst(INM, "government")
    _inst(OSC, "ngo")
    rows = [
        {
            "referral_id": f"h-{n}",
            "status": "discharged" if n < 3 else "declined",
            "sending_institution_id": INM,
            "receiving_institution_id": OSC,
            "facility_id": "fac-1",
            "people": [{"sex": "F", "age_group": "adults", "nationality": "HND", "role": "victim"}],
        }
        for n in range(8)
    ]
    consume(
        Event(
            type="referral.history.imported",
            aggregate_type="referral_history",
            aggregate_id="h-0",
            payload={"referrals": rows},
        )
    )
    _referral("h-7", [("F", "adults")], "admitted", OSC)  # a later change of one of them
    consume(
        Event(
            type="capacity.roster.imported",
            aggregate_type="roster",
            aggregate_id="f",
            occurred_at=datetime(2026, 4, 2, tzinfo=UTC),
            payload={
                "facilities": [],
                "pools": [
                    {"pool_id": "q1", "state": "09", "total": 10, "occupied": 7},
                    {"pool_id": "q2", "state": "09", "total": 5, "occupied": 1},
                ],
            },
        )
    )
    async with running(audit_app) as client:
        headers = auth_headers("segob_auditor")
        people = (await client.get("/api/v1/reports/people", headers=headers)).json()["rows"]
        assert sum(r["referred"] for r in people) == 8
        assert sum(r["admitted"] for r in people) == 3 + 1  # three discharged, h-7 admitted
        outcomes = (await client.get("/api/v1/reports/referral-outcomes", headers=headers)).json()
        line = next(r for r in outcomes["rows"] if r["sending_institution_id"] == INM)
        assert (line["civil_society"], line["no_information"], line["total"]) == (4, 4, 8)
        occupancy = (await client.get("/api/v1/reports/occupancy", headers=headers)).json()
        assert occupancy["rows"] == [
            {
                "period": "2026-04",
                "state": "09",
                "beds": 15,
                "occupied": 8,
                "utilisation_pct": 53.3,
            }
        ]


async def test_operations_report_and_the_operation_dimension(audit_app, auth_headers):
    """Issue 16: SEGOB counts by rescue operation: its people, placed, groups left out, and
    the people of the referrals made from it."""
    consume(
        Event(
            type="capacity.operation.created",
            aggregate_type="operation",
            aggregate_id="op-1",
            payload={
                "operation_id": "op-1",
                "state": "16",
                "status": "active",
                "institution_id": INM,
                "groups": 30,
                "people": 60,
                "placed_people": 52,
                "split_groups": 1,
                "unplaced_groups": 4,
                "holds": 26,
            },
        )
    )
    for i in range(3):
        consume(
            Event(
                type="referral.referral.admit",
                aggregate_type="referral",
                aggregate_id=f"r-op-{i}",
                payload={
                    "referral_id": f"r-op-{i}",
                    "status": "admitted",
                    "sending_institution_id": INM,
                    "receiving_institution_id": OSC,
                    "facility_id": "fac-1",
                    "operation_id": "op-1",
                    "people": [{"sex": "F", "age_group": "18-59", "role": "victim"}] * 5,
                },
            )
        )
    _referral("r-none", [("F", "18-59")] * 5, "sent", OSC)
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/operations", headers=auth_headers("segob_auditor"))
        assert r.status_code == 200, r.text
        (row,) = r.json()["rows"]
        assert row["operation"] == "op-1"
        assert (row["people"], row["placed"], row["referred"], row["admitted"]) == (60, 52, 15, 15)
        assert row["unplaced_groups"] == 4
        r = await client.get(
            "/api/v1/reports/people?by=operation", headers=auth_headers("segob_auditor")
        )
        assert r.status_code == 200, r.text
        rows = {x["operation"]: x["referred"] for x in r.json()["rows"]}
        assert rows == {"op-1": 15, "N/A": 5}

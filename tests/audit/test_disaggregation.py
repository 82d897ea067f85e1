"""CNDH disaggregation: S.I. and N/A apart from zero, totals from rows, times, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from audit.main import consume
from services.events import Event
from tests.audit.conftest import EVENT_OF_STATUS
from tests.audit.exported import exported_rows
from tests.conftest import running

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _ref(rid: str, status: str, people: list[dict], *, at: datetime = T0, **extra) -> None:
    consume(
        Event(
            type=f"referral.referral.{EVENT_OF_STATUS[status]}",
            aggregate_type="referral",
            aggregate_id=rid,
            occurred_at=at,
            payload={
                "referral_id": rid,
                "status": status,
                "sending_institution_id": extra.pop("sender", "fge-chis"),
                "receiving_institution_id": "casa",
                "facility_id": "fac-1",
                "state": "07",
                "people": people,
                **extra,
            },
        )
    )


def _person(sex: str, band: str, nat: str, origin: str | None, groups: list[str] | None,
            offences: list[str], role: str = "victim") -> dict:  # fmt: skip
    p = {"sex": sex, "age_band": band, "nationality": nat, "role": role, "offences": offences,
         "state_of_origin": origin}  # fmt: skip
    if groups is not None:
        p["vulnerable_groups"] = groups
    return p


def _fixture() -> None:
    woman = _person("F", "18-59", "MEX", "07", ["indigenous"], ["art10-III", "art10-IV"])
    girl = _person("F", "13-17", "GTM", None, [], ["art10-III"])
    child = _person("M", "0-12", "MEX", "07", [], [], role="accompanying_child")
    unknown = _person("M", "unknown", "HND", None, None, [])
    _ref("r1", "sent", [woman, child], response_due_at=(T0 + timedelta(hours=4)).isoformat())
    _ref("r1", "admitted", [woman, child], at=T0 + timedelta(hours=6))
    _ref("r2", "sent", [girl], response_due_at=(T0 + timedelta(hours=4)).isoformat())
    _ref("r2", "accepted", [girl], at=T0 + timedelta(hours=2))
    _ref("r3", "sent", [unknown], response_due_at=(T0 + timedelta(hours=4)).isoformat())
    _ref("r4", "sent", [woman], response_due_at="2999-01-01T00:00:00+00:00")
    _ref("r5", "sent", [girl])
    _ref("r5", "expired", [girl], at=T0 + timedelta(hours=5))


async def test_variables_with_si_and_na_and_totals(audit_app, auth_headers):
    _fixture()
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get(
            "/api/v1/reports/people", params={"by": "nationality,state_of_origin"}, headers=h
        )
        assert r.status_code == 200, r.text
        rows: dict[Any, Any] = {
            (x["nationality"], x["state_of_origin"]): x["referred"] for x in r.json()["rows"]
        }
        # Foreigners have no Mexican state of origin (N/A); an unrecorded one is S.I.
        assert rows == {("GTM", "N/A"): 2, ("HND", "N/A"): 1, ("MEX", "07"): 3}
        assert r.json()["totals"]["referred"] == 6

        r = await client.get("/api/v1/reports/people", params={"by": "offence"}, headers=h)
        rows = {x["offence"]: x["referred"] for x in r.json()["rows"]}
        # The accompanying child has no offence (N/A); the unknown man's is not known (S.I.);
        # the woman of two offences is one person in "two_or_more" (no total over the people).
        assert rows == {"art10-III": 2, "two_or_more": 2, "N/A": 1, "S.I.": 1}

        r = await client.get("/api/v1/reports/people", params={"by": "vulnerable_group"},
                             headers=h)  # fmt: skip
        rows = {x["vulnerable_group"]: x["referred"] for x in r.json()["rows"]}
        # An empty list is "none" (asked, none applies); not asked is S.I. (never N/A).
        assert rows == {"indigenous": 2, "none": 3, "S.I.": 1}

        r = await client.get("/api/v1/reports/people", params={"by": "age_group,outcome"},
                             headers=h)  # fmt: skip
        rows = {(x["age_group"], x["outcome"]): x for x in r.json()["rows"]}
        assert rows[("S.I.", "no_information")]["referred"] == 1  # unknown age, past deadline
        assert rows[("13-17", "no_information")]["referred"] == 1  # expired
        assert rows[("13-17", "in_progress")]["referred"] == 1  # accepted
        assert rows[("18-59", "in_care")]["admitted"] == 1

        # The same figures for an observer: counts in bands of five, 0-4 as "<5"; a row of
        # nothing but "<5" is not listed; the total is the exact 6 banded (5), not withheld.
        r = await client.get("/api/v1/reports/people", params={"by": "sex"},
                             headers=auth_headers("observer"))  # fmt: skip
        body = r.json()
        assert body["rows"] == []  # F 4 and M 2: both all "<5"
        assert body["totals"]["referred"] == 5
        r = await client.get("/api/v1/reports/people", params={"by": "sex"}, headers=h)
        assert {x["sex"]: x["referred"] for x in r.json()["rows"]} == {"F": 4, "M": 2}
        assert r.json()["totals"]["referred"] == 6

        r = await client.get("/api/v1/reports/people", params={"by": "sex,colour"}, headers=h)
        assert r.status_code == 422 and r.json()["error"] == "invalid_disaggregation"

        r = await client.get("/api/v1/reports/people",
                             params={"by": "state,period,sending_institution_id",
                                     "format": "csv"}, headers=h)  # fmt: skip
        lines = exported_rows(r.text)
        # Spanish headers and names: the state's name, not its INEGI code.
        assert lines[0]["Entidad federativa"] == "Chiapas" and lines[0]["Mes"] == "2026-03"
        # An export is banded like an observer's view: the 6 people are "5" (5 to 9).
        assert lines[-1]["Entidad federativa"] == "Total"
        assert lines[-1]["Personas canalizadas"] == "5"
        assert "«<5» es una cifra de 0 a 4" in r.text  # the legend under the table


async def test_times_to_answer_and_admission_and_no_information(audit_app, auth_headers):
    _fixture()
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/reports/referral-times", headers=h)
        (row,) = r.json()["rows"]
        # r1 answered by admission after 6 h, r2 accepted after 2 h; r3-r5 unanswered.
        assert (row["sent"], row["answered"], row["admitted"]) == (5, 2, 1)
        assert row["median_hours_to_answer"] == 4.0
        assert row["median_hours_to_admission"] == 6.0
        r = await client.get("/api/v1/reports/referral-times",
                             headers=auth_headers("observer"))  # fmt: skip
        (row,) = r.json()["rows"]
        assert row["answered"] == "<5" and row["median_hours_to_answer"] == "*"

        r = await client.get("/api/v1/reports/no-information", params={"by": "sending_institution_id"},
                             headers=h)  # fmt: skip
        (row,) = r.json()["rows"]
        # r3 past its deadline, r5 expired; r4 still within it; r1/r2 were answered.
        assert row["past_deadline"] == 2 and row["within_deadline"] == 1
        assert row["no_deadline"] == 0 and row["people_past"] == 2

"""The monthly per-facility report: figures worked out by hand, totals computed, PDF content."""

from __future__ import annotations

from datetime import UTC, datetime

from audit.main import consume
from services.events import Event
from tests.audit.conftest import EVENT_OF_STATUS
from tests.audit.test_roster import _pdf_text
from tests.conftest import running


def _facility() -> None:
    consume(
        Event(
            type="capacity.facility.created",
            aggregate_type="facility",
            aggregate_id="fac-1",
            aggregate_version=1,
            payload={"facility_id": "fac-1", "name": "Casa Esperanza",
                     "kind": "albergue", "status": "active", "state": "09"},
        )
    )  # fmt: skip


def _event(rid: str, status: str, day: tuple[int, int], people: list[dict], *,
           facility: str = "fac-1", **extra) -> None:  # fmt: skip
    consume(
        Event(
            type=f"referral.referral.{EVENT_OF_STATUS[status]}",
            aggregate_type="referral",
            aggregate_id=rid,
            occurred_at=datetime(2026, day[0], day[1], 12, tzinfo=UTC),
            payload={"referral_id": rid, "status": status, "facility_id": facility,
                     "people": people, **extra},
        )
    )  # fmt: skip


def _victim(nat: str, offences: list[str]) -> dict:
    return {"sex": "F", "role": "victim", "nationality": nat, "offences": offences}


CHILD = {"sex": "M", "role": "accompanying_child", "nationality": "MEX"}


def _fixture() -> None:
    _facility()
    a = [_victim("MEX", ["art10-III"]), CHILD]
    _event("rA", "sent", (3, 4), a, services=["legal", "medical"])
    _event("rA", "admitted", (3, 5), a, services=["legal", "medical"])
    _event("rA", "discharged", (5, 10), a, services=["legal", "medical"],
           outcome="reintegrated_origin")  # fmt: skip
    b = [_victim("GTM", [])]
    _event("rB", "admitted", (4, 1), b)
    _event("rB", "discharged", (4, 20), b, outcome="transferred_onward")
    _event("rC", "sent", (4, 2), [_victim("MEX", [])])  # never admitted: not served
    _event("rD", "admitted", (4, 2), [_victim("MEX", [])], facility="other")
    _event("rE", "admitted", (4, 2), [_victim("MEX", ["art10-IV"])] * 5)


def _rows(section: dict) -> dict[str, list[int]]:
    return {r["label"]: r["values"][2:5] for r in section["rows"]}


async def test_monthly_report_by_hand_and_pdf(audit_app, auth_headers):
    _fixture()
    h = auth_headers("segob_auditor")
    async with running(audit_app) as client:
        r = await client.get("/api/v1/roster/fac-1/monthly-report?year=2026", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["columns"][0] == "2026-01" and len(body["columns"]) == 12
        served, new, reintegrated, transferred, offence, origin, services, provided = body[
            "sections"
        ]
        assert provided["title"] == "Servicios proporcionados, por tipo" and provided["rows"] == []
        direct, secondary = "Víctimas directas", "Víctimas secundarias (hijas e hijos, indirectas)"
        assert _rows(served) == {direct: [1, 7, 6], secondary: [1, 1, 1]}
        # rE's five women stay on to December: 1 + 7 + 6 + 5 x 7 months = 49 (the annex's
        # TOTAL column adds the months, as here); with the child's 3, 52.
        assert served["total"]["values"][2:5] == [2, 8, 7] and served["total"]["total"] == 52
        assert served["rows"][0]["total"] == 49
        assert _rows(new) == {direct: [1, 6, 0], secondary: [1, 0, 0]}
        assert _rows(reintegrated) == {direct: [0, 0, 1], secondary: [0, 0, 1]}
        assert _rows(transferred) == {direct: [0, 1, 0], secondary: [0, 0, 0]}
        assert _rows(offence) == {
            "Explotación sexual": [1, 1, 1],
            "Explotación laboral": [0, 5, 5],
            "S.I.": [0, 1, 0],
        }
        assert _rows(origin) == {"Mexicana": [1, 6, 6], "Centroamericana": [0, 1, 0]}
        assert _rows(services) == {
            "Asesoría jurídica": [2, 2, 2],
            "Atención médica": [2, 2, 2],
            "S.I.": [0, 6, 5],
        }
        assert "total" not in services  # one person receives several services

        one = await client.get("/api/v1/roster/fac-1/monthly-report?year=2026&month=4",
                               headers=h)  # fmt: skip
        assert one.json()["columns"] == ["2026-04"]
        assert one.json()["sections"][0]["rows"][0]["values"] == [7]

        pdf = await client.get(
            "/api/v1/roster/fac-1/monthly-report?year=2026&format=pdf", headers=h
        )
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = _pdf_text(pdf.content)
        assert "Informe mensual: Casa Esperanza".encode("latin-1") in text
        assert "Víctimas directas".encode("latin-1") in text
        assert b"<5" in text and b"TOTAL" in text

        r = await client.get("/api/v1/roster/nope/monthly-report?year=2026", headers=h)
        assert r.status_code == 404
        r = await client.get("/api/v1/roster/fac-1/monthly-report?year=2026",
                             headers=auth_headers("observer"))  # fmt: skip
        assert r.status_code == 403


def test_export_suppresses_small_counts_and_withholds_their_totals():
    from audit.monthly import suppressed

    report = {
        "sections": [
            {
                "title": "x",
                "rows": [
                    {"label": "a", "values": [1, 7, 0], "total": 8},
                    {"label": "b", "values": [5, 6, 0], "total": 11},
                ],
                "total": {"label": "Total", "values": [6, 13, 0], "total": 19},
            }
        ]
    }
    (sec,) = suppressed(report)["sections"]
    assert sec["rows"][0] == {"label": "a", "values": ["<5", 7, 0], "total": "*"}
    assert sec["rows"][1] == {"label": "b", "values": [5, 6, 0], "total": 11}
    assert sec["total"]["values"] == ["*", 13, 0] and sec["total"]["total"] == "*"

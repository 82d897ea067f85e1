"""Reconciliation: a small world built through the public API, and every report's rows and
totals equal to a direct count from the referral and capacity databases — in json, csv,
xlsx and pdf.

The world: live referrals with every minimum variable, S.I. and N/A cases, a multi-offence
victim, a declined referral and the same person referred again (her person key), people
admitted on the ledger (who they were, and the minimal body that says nothing), an
imported batch, and one search intent left unmet that the page re-runs.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlmodel import col, select

from audit import exports, reports
from audit.reports import banded
from canaliza.demo import CASA_MERCEDES, FGR
from services.clock import as_utc, utcnow
from tests.audit.exported import exported_rows
from tests.audit.test_roster import _pdf_text
from tests.conftest import demo_login, running
from tests.statistics.conftest import (
    facility_with_pool,
    historical,
    import_batch,
    settled,
    sign_government_agreement,
)

pytestmark = pytest.mark.slow

SI, NA = "S.I.", "N/A"
REACHED = {"admitted", "discharged"}
WOMAN = {"sex": "F", "age": 30, "role": "victim", "nationality": "MEX", "state_of_origin": "15",
         "vulnerable_groups": ["indigenous", "disability"], "offences": ["art10-III", "art13"]}  # fmt: skip
CHILD = {"sex": "M", "age": 5, "role": "accompanying_child", "nationality": "MEX"}
UNKNOWN = {"sex": None, "age": None, "role": "victim", "nationality": None}
MAN = {"sex": "M", "age": 40, "role": "victim", "nationality": "MEX"}


async def _live(client, fiscal, coord, facility, pool, people, actions) -> dict[str, Any]:
    hold = await client.post(
        "/api/v1/holds", json={"allocations": [{"pool_id": pool, "beds": len(people)}]},
        headers=fiscal,
    )  # fmt: skip
    assert hold.status_code == 201, hold.text
    created = await client.post(
        "/api/v1/referrals",
        json={"sending_institution_id": FGR.id, "receiving_institution_id": CASA_MERCEDES.id,
              "facility_id": facility, "hold_id": hold.json()["id"], "people": people,
              "consent": {"given": True}, "urgency": "urgent"},
        headers=fiscal,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    for action in ["send", *actions]:
        who = fiscal if action == "send" else coord
        body = {"reason": "Perfil fuera de su modelo de atención."} if action == "decline" else {}
        done = await client.post(f"/api/v1/referrals/{rid}/{action}", json=body, headers=who)
        assert done.status_code == 200, done.text
    return (await client.get(f"/api/v1/referrals/{rid}", headers=fiscal)).json()


# --- the direct count -------------------------------------------------------------------


def _one(values: list[str]) -> str:
    return values[0] if len(values) == 1 else "two_or_more"


def _band(age: int | None) -> str:
    if age is None:
        return SI
    return "0-12" if age <= 12 else "13-17" if age <= 17 else "18-59" if age <= 59 else "60+"


def direct_people() -> list[dict[str, Any]]:
    """Each person once, straight from the databases: referral people by person key (the
    latest referral that reached a shelter, else the latest), then ledger admissions."""
    from capacity.database import db as capacity_db
    from capacity.models import LedgerEntry
    from referral.database import db as referral_db
    from referral.models import Referral, ReferralPerson

    with referral_db.new_session(write=False) as session:
        rows = session.execute(
            select(ReferralPerson, Referral)
            .join(Referral, col(Referral.id) == col(ReferralPerson.referral_id))
            .order_by(col(Referral.created_at))
        ).all()
    by_key: dict[str, list[tuple[Any, Any]]] = {}
    for person, referral in rows:
        by_key.setdefault(str(person.person_key), []).append((person, referral))
    out = []
    for cases in by_key.values():
        reached = [c for c in cases if c[1].status in REACHED]
        p, r = (reached or cases)[-1]
        groups = p.vulnerable_groups
        out.append({
            "sex": p.sex or SI, "age_group": _band(p.age), "nationality": p.nationality or SI,
            "offence": NA if p.role == "accompanying_child" else _one(p.offences or [SI]),
            "vulnerable_group": SI if groups is None else _one(groups or ["none"]),
            "referred": 1, "admitted": int(any(c[1].status in REACHED for c in cases)),
            "outcome_kind": "civil_society" if r.status in REACHED else "no_information",
        })  # fmt: skip
    with capacity_db.new_session(write=False) as session:
        entries = session.exec(select(LedgerEntry).where(LedgerEntry.kind == "admit")).all()
    for entry in entries:
        for said in entry.people or []:
            out.append({
                "sex": said["sex"] or SI, "age_group": said["age_band"] or SI,
                "nationality": SI, "offence": SI, "vulnerable_group": SI, "referred": 0,
                "admitted": 1, "outcome_kind": "civil_society",
            })  # fmt: skip
    return out


def direct_referrals() -> dict[str, int]:
    from referral.database import db as referral_db
    from referral.models import Referral, ReferralHistory

    now = utcnow()
    with referral_db.new_session(write=False) as session:
        referrals = session.exec(select(Referral)).all()
        steps = session.execute(select(ReferralHistory.referral_id, ReferralHistory.to_status))
        reached: dict[str, set[str]] = {}
        for rid, status in steps:
            reached.setdefault(rid, set()).add(status)
    sent = [r for r in referrals if "sent" in reached.get(r.id, set())]
    due = {r.id: as_utc(r.response_due_at) if r.response_due_at else None for r in referrals}
    return {
        "sent": len(sent),
        "answered": sum(bool(reached[r.id] & {"accepted", "declined", *REACHED}) for r in sent),
        "admitted": sum("admitted" in reached[r.id] for r in sent),
        "past_deadline": sum(
            r.status == "expired"
            or (r.status == "sent" and (d := due[r.id]) is not None and d < now)
            for r in referrals
        ),
        "within_deadline": sum(
            r.status == "sent" and (d := due[r.id]) is not None and d >= now for r in referrals
        ),
    }


# --- the test ---------------------------------------------------------------------------


async def test_every_report_equals_a_direct_count_in_every_format(world_app):
    async with running(world_app) as client:
        sign_government_agreement()
        facility, pool = await facility_with_pool(client, CASA_MERCEDES.id)
        fiscal = await demo_login(client, "fiscal")
        coord = await demo_login(client, "coordinadora")

        # live referrals: every variable and a multi-offence victim with her child (N/A)
        await _live(client, fiscal, coord, facility, pool, [WOMAN, CHILD], ["accept", "admit"])
        declined = await _live(client, fiscal, coord, facility, pool, [UNKNOWN], ["decline"])
        # the same person referred again, now that more is known: one person, not two
        key = declined["people"][0]["person_key"]
        again = {"sex": "F", "age": 16, "role": "victim", "nationality": "HND",
                 "vulnerable_groups": [], "offences": ["art22"], "person_key": key}  # fmt: skip
        await _live(client, fiscal, coord, facility, pool, [again], ["accept", "admit"])
        await _live(client, fiscal, coord, facility, pool, [MAN], [])
        # a re-referral with a key her institution never issued: refused, nothing written
        bad = await client.post(
            "/api/v1/referrals",
            json={"sending_institution_id": FGR.id, "receiving_institution_id":
                  CASA_MERCEDES.id, "facility_id": facility, "consent": {"given": True},
                  "urgency": "urgent", "people": [{**MAN, "person_key": "0" * 32}]},
            headers=fiscal,
        )  # fmt: skip
        assert bad.status_code == 422 and "person_key" in bad.json()["detail"], bad.text
        # an offence the General Law does not have: 422 in Spanish naming the field
        bad = await client.post(
            "/api/v1/referrals",
            json={"sending_institution_id": FGR.id, "receiving_institution_id":
                  CASA_MERCEDES.id, "facility_id": facility, "consent": {"given": True},
                  "urgency": "urgent", "people": [{**MAN, "offences": ["art13", "art99"]}]},
            headers=fiscal,
        )  # fmt: skip
        assert bad.status_code == 422, bad.text
        assert "offences" in bad.json()["detail"] and "Ley General" in bad.json()["detail"]
        mine = await client.get("/api/v1/referrals", headers=fiscal)
        assert len(mine.json()) == 4  # nothing written by either refusal

        # admissions on the ledger: who they were, and the minimal body (S.I.)
        for body in (
            {"kind": "admit", "beds": 2, "reason": "Ingreso directo",
             "people": [{"sex": "F", "age_band": "18-59"}, {"sex": None, "age_band": None}]},
            {"kind": "admit", "beds": 1, "reason": "Ingreso directo"},
        ):  # fmt: skip
            entry = await client.post(f"/api/v1/pools/{pool}/ledger", json=body, headers=coord)
            assert entry.status_code == 201, entry.text

        # an imported batch: 12 women, 6 discharged, 3 declined, 3 never answered
        person = {"sex": "F", "age": 25, "role": "victim", "nationality": "MEX",
                  "state_of_origin": "09", "vulnerable_groups": [], "offences": ["art10-III"]}  # fmt: skip
        statuses = ["discharged"] * 6 + ["declined"] * 3 + ["sent"] * 3
        await import_batch(client, [
            historical(receiver=CASA_MERCEDES.id, facility_id=facility, people=[person],
                       status=s, day=i) for i, s in enumerate(statuses)
        ])  # fmt: skip

        # one search intent left unmet, re-run by the page three times; and another intent
        search = {"people": [{"sex": "M", "age": 40, "role": "victim"}],
                  "needs": {"wheelchair": True}, "state": "09"}  # fmt: skip
        for intent in ("caso-0001-abc", "caso-0001-abc", "caso-0001-abc", "caso-0002-xyz"):
            r = await client.post("/api/v1/availability/search",
                                  json={**search, "intent_key": intent}, headers=fiscal)  # fmt: skip
            assert r.status_code == 200 and r.json()["unmet"], r.text

        people = direct_people()
        auditor = await demo_login(client, "auditor")
        await settled(client, auditor, len(people))

        async def report(name: str, by: str | None = None, fmt: str = "json") -> Any:
            params = {"format": fmt, **({"by": by} if by else {})}
            r = await client.get(f"/api/v1/reports/{name}", params=params, headers=auditor)
            assert r.status_code == 200, r.text
            return r.json() if fmt == "json" else r.content

        # --- people: each variable, rows and totals -------------------------------------
        for by in ("sex", "age_group", "nationality", "offence", "vulnerable_group"):
            body = await report("people", by)
            assert body["unit"] == "people"
            got = {x[by]: (x["people"], x["referred"], x["admitted"]) for x in body["rows"]}
            want: dict[str, list[int]] = {}
            for p in people:
                cell = want.setdefault(p[by], [0, 0, 0])
                cell[0] += 1
                cell[1] += p["referred"]
                cell[2] += p["admitted"]
            assert got == {k: tuple(v) for k, v in want.items()}, by
            assert body["totals"]["people"] == len(people)  # no section exceeds the people
        offences = Counter(p["offence"] for p in people)
        assert offences["two_or_more"] == 1 and offences[NA] == 1  # the woman; her child

        outcomes = (await report("referral-outcomes"))["totals"]
        kinds = Counter(p["outcome_kind"] for p in people)
        assert (outcomes["civil_society"], outcomes["no_information"], outcomes["total"]) == (
            kinds["civil_society"], kinds["no_information"], len(people))  # fmt: skip

        counts = direct_referrals()
        times = (await report("referral-times"))["totals"]
        assert (times["sent"], times["answered"], times["admitted"]) == (
            counts["sent"], counts["answered"], counts["admitted"])  # fmt: skip
        pending = (await report("no-information"))["totals"]
        assert (pending["past_deadline"], pending["within_deadline"]) == (
            counts["past_deadline"], counts["within_deadline"])  # fmt: skip

        from capacity.database import db as capacity_db
        from capacity.models import Pool, UnmetRequest

        with capacity_db.new_session(write=False) as session:
            unmet = session.exec(select(UnmetRequest)).all()
            pools = session.exec(select(Pool)).all()
        assert len(unmet) == 2 and all(u.needs == {"wheelchair": True} for u in unmet)
        demand = await report("unmet-demand")
        assert demand["unit"] == "search_intents"
        assert demand["totals"]["requests"] == len(unmet)
        occupancy = (await report("occupancy"))["totals"]
        assert (occupancy["beds"], occupancy["occupied"]) == (
            sum(p.total for p in pools), sum(p.occupied for p in pools))  # fmt: skip
        assert (await report("agreements-refused"))["rows"] == []

        # --- every format: exports band counts (0-4 as "<5"), from the same exact rows --
        want_offence = Counter(p["offence"] for p in people)
        listed = {k: banded(v) for k, v in want_offence.items() if v >= 5}
        # Exports are written for people (ADR 0025): Spanish headers, offences by name.
        head = dict(zip(reports.fields("people", ["offence"]),
                        exports.headers("people", ["offence"]), strict=True))  # fmt: skip
        labels = exports.Labels()
        named = {str(labels.value("offence", k)): v for k, v in listed.items()}
        lines = exported_rows((await report("people", "offence", "csv")).decode("utf-8"))
        off_h, people_h = head["offence"], head["people"]
        assert {x[off_h]: int(x[people_h]) for x in lines[:-1]} == named
        assert lines[-1][off_h] == "Total"
        assert lines[-1][people_h] == str(banded(len(people)))
        sheet = load_workbook(io.BytesIO(await report("people", "offence", "xlsx")))["Datos"]
        cells = [[c.value for c in row] for row in sheet.iter_rows()]
        header = cells[0]
        assert {r[header.index(off_h)]: r[header.index(people_h)] for r in cells[1:-1]} == (
            named)  # fmt: skip
        assert cells[-1][header.index(people_h)] == banded(len(people))
        text = _pdf_text(await report("people", "offence", "pdf"))
        for n in listed.values():
            assert f"({n})".encode() in text
        assert f"({banded(len(people))})".encode() in text

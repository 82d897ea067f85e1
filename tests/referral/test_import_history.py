"""``canaliza referral import-history FILE``: JSON lines straight into the database."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlmodel import col
from typer.testing import CliRunner

from canaliza.demo import CASA_MERCEDES, FGR
from canaliza.seed import generate
from referral import demo, events, importer
from referral.cli import app
from referral.database import db, outbox
from referral.models import Referral, ReferralHistory
from referral.schemas import HistoricalReferral
from services.contracts.referral import HistoryImported, ImportedReferral
from services.contracts.statistics import case_variables
from services.tokens import Principal
from services.vocabulary import Outcome

SERVICE = Principal(sub="import-test", roles=frozenset({"service"}))


def _rows() -> list[dict]:
    """Demo history along FEVIMTRA → Casa de las Mercedes, bound by whichever signed
    agreement of the pair is in force (the referral service's demo agreement here)."""
    return [
        {**r, "agreement_number": None}
        for r in generate("demo", 2026).referrals
        if (r["sending_institution_id"], r["receiving_institution_id"])
        == (FGR.id, CASA_MERCEDES.id)
        and r["created_at"] >= "2024-01-01"
    ]


def _count(model) -> int:
    with db.new_session(write=False) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


async def test_import_history_file_is_idempotent_and_refuses_a_bad_line(ctx, tmp_path):
    with db.new_session(write=True) as session:
        demo.load_demo(session)
        session.commit()
    rows = _rows()
    assert len(rows) >= 20
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(app, ["import-history", str(path), "--batch-size", "7"])
    assert first.exit_code == 0, first.output
    assert f"{len(rows):,} canalizaciones importadas" in first.output
    assert _count(Referral) == len(rows)
    steps = _count(ReferralHistory)
    assert steps >= 2 * len(rows)  # at least create and send for each

    again = runner.invoke(app, ["import-history", str(path)])
    assert again.exit_code == 0, again.output
    assert f"{len(rows):,} ya existían" in again.output
    assert (_count(Referral), _count(ReferralHistory)) == (len(rows), steps)

    bad = tmp_path / "bad.jsonl"
    broken = {**rows[0], "id": "00000000-0000-4000-8000-00000000000b", "status": "discharged"}
    broken["outcome"] = None  # a discharge without its outcome
    bad.write_text(json.dumps(broken) + "\n", encoding="utf-8")
    refused = runner.invoke(app, ["import-history", str(bad)])
    assert refused.exit_code != 0
    assert _count(Referral) == len(rows)


async def test_a_batch_prepared_before_another_import_stored_some_skips_them(ctx):
    """The service builds a batch in a read and writes it afterwards: ids another import
    stored in between are skipped and counted as present, not written twice."""
    with db.new_session(write=True) as session:
        demo.load_demo(session)
        session.commit()
    rows = [HistoricalReferral.model_validate(r) for r in _rows()]
    with db.unit_of_work(write=False) as read:
        prepared = importer.prepare_history(read, principal=SERVICE, referrals=rows)
    with db.unit_of_work() as session:
        first = importer.import_history(session, principal=SERVICE, referrals=rows[:5])
    assert first.imported == 5
    before = _steps_per_referral()
    with db.unit_of_work() as session:
        late = importer.store_history(session, prepared, principal=SERVICE)
    assert (late.received, late.imported, late.already_present) == (len(rows), len(rows) - 5, 5)
    assert _count(Referral) == len(rows)
    after = _steps_per_referral()
    assert set(after) == {r.id for r in rows}
    assert {rid: after[rid] for rid in before} == before  # the five not written twice


def _steps_per_referral() -> dict[str, int]:
    with db.new_session(write=False) as session:
        query = select(col(ReferralHistory.referral_id), func.count()).group_by(
            ReferralHistory.referral_id
        )
        return {rid: int(n) for rid, n in session.execute(query).all()}


def _as_model(r: HistoricalReferral, data: dict) -> dict:
    """The referral as the contract's models give it, built field by field as the live
    lifecycle builds its events (``case_variables`` and ``person_facts``)."""
    people = [
        p.model_copy(update={"person_key": key})
        for p, key in zip(r.people, [p["person_key"] for p in data["people"]], strict=True)
    ]
    return ImportedReferral(
        **case_variables(
            sending_institution_id=r.sending_institution_id,
            receiving_institution_id=r.receiving_institution_id,
            facility_id=r.facility_id,
            state=data["state"],
            steps=data["steps"],
            people=[events.person_facts(p) for p in people],
        ),
        referral_id=r.id,
        status=data["status"],
        urgency=r.urgency,
        created_on=r.created_at.date().isoformat(),
        outcome=Outcome(r.outcome) if r.outcome else None,
    ).model_dump(mode="json")


async def test_the_batch_event_is_the_contract_s_json_built_as_data(ctx):
    """The batch event lists each referral as data (no model per referral): exactly what
    ``ImportedReferral`` dumps, same keys in the same order, and valid against it."""
    with db.new_session(write=True) as session:
        demo.load_demo(session)
        session.commit()
    rows = [HistoricalReferral.model_validate(r) for r in _rows()]
    assert {r.status for r in rows} >= {"discharged", "declined"}
    assert any(p.nationality != "MEX" for r in rows for p in r.people)
    with db.unit_of_work() as session:
        result = importer.import_history(session, principal=SERVICE, referrals=rows)
    with db.new_session(write=False) as session:
        body = session.execute(
            select(outbox.table.c.body).where(outbox.table.c.event_id == result.event_id)
        ).scalar_one()
    listed = body["payload"]["referrals"]
    assert [d["referral_id"] for d in listed] == [r.id for r in rows]
    for r, data in zip(rows, listed, strict=True):
        expected = _as_model(r, data)
        assert data == expected
        assert json.dumps(data) == json.dumps(expected)  # the same keys in the same order
        assert all(p["person_key"] for p in data["people"])
    payload = HistoryImported.model_validate(body["payload"]).model_dump(mode="json")
    assert payload == body["payload"]

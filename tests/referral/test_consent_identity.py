"""Who gave the informed consent is identity (issue 20, item 7).

``consent.given_by`` (a person's name) used to be stored in the referral's ``consent`` JSON
and returned by ``GET /referrals/{id}`` to the sender and, after acceptance, to the receiver
— without a disclosure event, even under witness protection. It is now kept with the
people's names (``ConsentIdentity``) and leaves the service only through the audited
identities route, which honours witness protection.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from referral import demo
from referral.cli import app as referral_cli
from referral.database import db
from referral.models import ConsentIdentity, Referral, metadata
from services.db import alembic_config
from tests.referral.conftest import SEGOB
from tests.referral.test_import_history import _rows

NAME = "Ana Pérez"


async def _events(ctx, type_):
    for _ in range(100):
        found = [e for e in ctx.events if e.type == type_]
        if found:
            return found
        await asyncio.sleep(0.02)
    return []


def _body(ctx, **over):
    return ctx.referral_body(consent={"given": True, "given_by": NAME}, **over)


async def test_consent_giver_is_in_no_referral_body_and_no_event(ctx):
    await ctx.agreement()
    r = await ctx.client.post("/api/v1/referrals", json=_body(ctx), headers=ctx.fiscal)
    assert r.status_code == 201, r.text
    assert NAME not in r.text
    ref = r.json()
    assert ref["consent"]["given"] is True and ref["consent"]["given_by_recorded"] is True
    assert (await ctx.act(ref["id"], "send", ctx.fiscal)).status_code == 200
    r = await ctx.act(ref["id"], "accept", ctx.coord)
    assert r.status_code == 200 and NAME not in r.text
    auditor = ctx.h("segob_auditor", institution_id=SEGOB)
    for who in (ctx.coord, ctx.fiscal, auditor):
        for path in (f"/api/v1/referrals/{ref['id']}", "/api/v1/referrals"):
            seen = await ctx.client.get(path, headers=who)
            assert seen.status_code == 200, seen.text
            assert NAME not in seen.text and 'given_by"' not in seen.text, (who, path)
    view = (await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)).json()
    assert view["deidentified"] is False
    assert view["consent"]["given"] is True and view["consent"]["given_by_recorded"] is True
    # nor is the name in the referral row itself
    with db.new_session(write=False) as session:
        stored = session.get(Referral, ref["id"])
        assert stored is not None and NAME not in json.dumps(stored.consent)
    # the receiver learns it through the identities route, and that is audited
    assert not [e for e in ctx.events if e.type == "referral.disclosure.identity"]
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.coord)
    assert r.status_code == 200, r.text
    assert {"kind": "consent_given_by", "position": None, "pseudonym": None, "name": NAME} in (
        r.json()
    )
    disclosed = await _events(ctx, "referral.disclosure.identity")
    assert len(disclosed) == 1
    # the sender and auditors cannot use that route
    for who in (ctx.fiscal, auditor):
        r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=who)
        assert r.status_code == 403 and NAME not in r.text
    await asyncio.sleep(0.05)  # let the relay deliver what it still holds
    for event in ctx.events:
        assert NAME not in json.dumps(event.payload, default=str), event.type


async def test_consent_giver_is_withheld_under_witness_protection(ctx):
    await ctx.agreement()
    r = await ctx.client.post(
        "/api/v1/referrals", json=_body(ctx, witness_protection=True), headers=ctx.fiscal
    )
    assert r.status_code == 201, r.text
    ref = r.json()
    assert (await ctx.act(ref["id"], "send", ctx.fiscal)).status_code == 200
    assert (await ctx.act(ref["id"], "accept", ctx.coord)).status_code == 200
    seen = await ctx.client.get(f"/api/v1/referrals/{ref['id']}", headers=ctx.coord)
    assert seen.status_code == 200 and NAME not in seen.text
    r = await ctx.client.get(f"/api/v1/referrals/{ref['id']}/identities", headers=ctx.coord)
    assert r.status_code == 403 and "protección de testigos" in r.json()["detail"]
    assert NAME not in r.text


async def test_consent_without_giver_records_none(ctx):
    ref = await ctx.referral()
    assert ref["consent"]["given_by_recorded"] is False
    with db.new_session(write=False) as session:
        assert session.get(ConsentIdentity, ref["id"]) is None


async def test_imported_history_keeps_the_consent_giver_in_the_vault(ctx, tmp_path):
    with db.new_session(write=True) as session:
        demo.load_demo(session)
        session.commit()
    row = _rows()[0]
    row["consent"] = {**row["consent"], "given": True, "given_by": NAME}
    path = tmp_path / "history.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = CliRunner().invoke(referral_cli, ["import-history", str(path)])
    assert result.exit_code == 0, result.output
    with db.new_session(write=False) as session:
        stored = session.get(Referral, row["id"])
        assert stored is not None and NAME not in json.dumps(stored.consent)
        assert stored.consent["given_by_recorded"] is True
        giver = session.get(ConsentIdentity, row["id"])
        assert giver is not None and giver.given_by == NAME


def _migrate_and_check(url: str) -> None:
    cfg = alembic_config("referral", url, metadata)
    command.upgrade(cfg, "c5e2a9f1d3b7")
    # each service owns a PostgreSQL schema (as ``services.db`` connects)
    engine = create_engine(
        url, connect_args={} if url.startswith("sqlite") else {"options": "-csearch_path=referral"}
    )
    when = datetime(2026, 1, 1, tzinfo=UTC)
    institution = sa.table(
        "institution",
        *(sa.column(c) for c in ("id", "name", "type", "state", "version")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    referral = sa.table(
        "referral",
        *(
            sa.column(c)
            for c in (
                "id",
                "sending_institution_id",
                "receiving_institution_id",
                "facility_id",
                "urgency",
                "status",
                "version",
                "created_by",
            )
        ),
        sa.column("witness_protection", sa.Boolean),
        sa.column("hold_release_pending", sa.Boolean),
        sa.column("consent", sa.JSON),
        sa.column("services", sa.JSON),
        sa.column("allocations", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    old = {"given": True, "given_by": NAME, "given_at": None, "scope": None}
    with engine.begin() as conn:
        for iid in ("i1", "i2"):
            conn.execute(
                sa.insert(institution).values(
                    id=iid, name=iid, type="ngo", state="09", version=1, created_at=when
                )
            )
        for rid, consent in (("r1", old), ("r2", {"given": True, "given_by": None})):
            conn.execute(
                sa.insert(referral).values(
                    id=rid,
                    sending_institution_id="i1",
                    receiving_institution_id="i2",
                    facility_id="f",
                    urgency="normal",
                    status="sent",
                    version=1,
                    created_by="x",
                    witness_protection=False,
                    hold_release_pending=False,
                    consent=consent,
                    services=[],
                    allocations=[],
                    created_at=when,
                    updated_at=when,
                )
            )

    def stored() -> dict[str, Any]:
        with engine.connect() as conn:
            return {
                r.id: r.consent for r in conn.execute(sa.select(referral.c.id, referral.c.consent))
            }

    command.upgrade(cfg, "head")
    rows = stored()
    with engine.connect() as conn:
        vault = [
            tuple(r)
            for r in conn.execute(text("SELECT referral_id, given_by FROM consent_identity"))
        ]
    assert NAME not in json.dumps(rows) and rows["r1"]["given_by_recorded"] is True
    assert rows["r2"] == {"given": True, "given_by_recorded": False}
    assert vault == [("r1", NAME)]
    command.check(cfg)
    command.downgrade(cfg, "c5e2a9f1d3b7")
    assert stored()["r1"] == old
    engine.dispose()


def test_migration_moves_the_consent_giver_into_the_vault(tmp_path):
    _migrate_and_check(f"sqlite:///{tmp_path}/referral.db")


@pytest.mark.postgres
def test_migration_moves_the_consent_giver_into_the_vault_on_postgres(pg_url):
    _migrate_and_check(pg_url)


def test_a_row_still_holding_a_name_never_shows_it():
    """Defence in depth: a consent stored before the migration is shown without the name."""
    from referral.schemas import consent_view

    assert consent_view({"given": True, "given_by": NAME}) == {
        "given": True,
        "given_by_recorded": True,
    }
    assert consent_view({"given": True, "given_by_recorded": False}) == {
        "given": True,
        "given_by_recorded": False,
    }

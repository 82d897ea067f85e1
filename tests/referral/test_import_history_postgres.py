"""The history import on PostgreSQL: a large batch goes through COPY and reads back as an
INSERT would have stored it (JSON columns, times, the consent identities)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select
from sqlmodel import col

from referral import demo, importer
from referral.database import db
from referral.models import ConsentIdentity, Referral, ReferralHistory, ReferralPerson
from referral.schemas import HistoricalReferral
from services.db import COPY_MIN_ROWS
from services.tokens import Principal
from tests.referral.test_import_history import _rows

pytestmark = pytest.mark.postgres

SERVICE = Principal(sub="import-test", roles=frozenset({"service"}))


@pytest.fixture
def referral_db_url(pg_url) -> str:
    return pg_url


async def test_a_large_batch_is_copied_and_reads_back_the_same(ctx):
    with db.new_session(write=True) as session:
        demo.load_demo(session)
        session.commit()
    rows = [HistoricalReferral.model_validate(r) for r in _rows()]
    by_id = {r.id: r for r in rows}
    copies: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        copies.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        with db.unit_of_work() as session:
            result = importer.import_history(session, principal=SERVICE, referrals=rows)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert result.imported == len(rows)
    # The people and history tables are past the COPY threshold: no INSERT reached them.
    with db.new_session(write=False) as session:
        people = session.execute(select(func.count()).select_from(ReferralPerson)).scalar_one()
        steps = session.execute(select(func.count()).select_from(ReferralHistory)).scalar_one()
        assert steps >= COPY_MIN_ROWS
        assert not [s for s in copies if "INSERT INTO referral_history" in s]
        assert people == sum(len(r.people) for r in rows)
        for stored in session.execute(select(Referral)).scalars():
            source = by_id[stored.id]
            assert stored.created_at == source.created_at
            assert stored.consent["given"] == source.consent.given
        identities = select(col(ConsentIdentity.referral_id), col(ConsentIdentity.given_by))
        names = {rid: name for rid, name in session.execute(identities).all()}
        assert names == {r.id: r.consent.given_by for r in rows if r.consent.given_by}

"""Old data stays readable: a stored "repatriated" outcome becomes "assisted_return" (ADR 0022)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

from referral.models import Referral, metadata
from services.clock import utcnow
from services.db import alembic_config


def test_repatriated_is_migrated_to_assisted_return(tmp_path):
    url = f"sqlite:///{tmp_path}/referral.db"
    cfg = alembic_config("referral", url, metadata)
    command.upgrade(cfg, "head")
    engine = sa.create_engine(url)  # SQLite without foreign keys: no institutions needed
    now = utcnow()
    with Session(engine) as session:
        for rid, outcome in (("r1", "reintegrated_origin"), ("r2", None), ("r3", None)):
            session.add(
                Referral(id=rid, sending_institution_id="i1", receiving_institution_id="i2",
                         facility_id="f", urgency="normal", status="discharged",
                         outcome=outcome, created_by="x", created_at=now, updated_at=now)
            )  # fmt: skip
        session.commit()
    command.downgrade(cfg, "b7e3c9a1f5d2")  # before the catalogue knew assisted returns
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE referral SET outcome = 'repatriated' WHERE id = 'r2'"))
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows: dict[str, str | None] = dict(
            conn.execute(sa.text("SELECT id, outcome FROM referral")).tuples().all()
        )
    assert rows == {"r1": "reintegrated_origin", "r2": "assisted_return", "r3": None}
    engine.dispose()

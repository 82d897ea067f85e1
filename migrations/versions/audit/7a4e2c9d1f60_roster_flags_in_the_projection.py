"""audit: the roster row keeps what its flags are computed from (ADR 0027)

Pool totals and confirmation, last and next visit, open follow-up actions and the earliest
due one, registration items pending, and when open stays pass their maximum; the existing
rows are filled from the roster's own tables. An index in the roster's order lets a page read
only its own rows.

Revision ID: 7a4e2c9d1f60
Revises: 5c1d9e7a3b20
Create Date: 2026-12-06 18:50:00
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "7a4e2c9d1f60"
down_revision: str | None = "5c1d9e7a3b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = ("pending_count", "pool_count", "beds", "occupied", "visits_done", "open_actions")
INSTANTS = ("capacity_confirmed_at", "stay_over_first_at", "stay_over_last_at")
DAYS = ("last_visit_on", "visit_since_on", "next_visit_planned_for", "action_due_on")


def upgrade() -> None:
    with op.batch_alter_table("roster_facility", schema=None) as batch_op:
        for name in COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
        for name in INSTANTS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        for name in DAYS:
            batch_op.add_column(sa.Column(name, sa.Date(), nullable=True))
    op.create_index(
        "ix_roster_facility_order",
        "roster_facility",
        ["state", sa.text("coalesce(name, '')"), "facility_id"],
    )
    with op.batch_alter_table("roster_stay", schema=None) as batch_op:
        batch_op.add_column(sa.Column("over_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_roster_stay_facility_over", ["facility_id", "over_at"])
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_roster_facility_order", table_name="roster_facility")
    with op.batch_alter_table("roster_stay", schema=None) as batch_op:
        batch_op.drop_index("ix_roster_stay_facility_over")
        batch_op.drop_column("over_at")
    with op.batch_alter_table("roster_facility", schema=None) as batch_op:
        for name in (*DAYS, *INSTANTS, *COUNTS):
            batch_op.drop_column(name)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _backfill(conn: sa.Connection) -> None:
    """Every roster row's kept columns, as ``audit.roster_state.refresh`` computes them
    (written against this revision's tables, not the models, which move on)."""
    c, when, day, n = sa.column, sa.DateTime(timezone=True), sa.Date(), sa.Integer()
    fac = sa.table("roster_facility", c("facility_id"), c("first_seen_at", when),
                   c("max_stay_days", n), c("registration_pending", sa.JSON()),
                   *(c(name, n) for name in COUNTS), *(c(name, when) for name in INSTANTS),
                   *(c(name, day) for name in DAYS))  # fmt: skip
    pool = sa.table("roster_pool", c("facility_id"), c("total", n), c("occupied", n),
                    c("last_confirmed_at", when))  # fmt: skip
    visit = sa.table("visit", c("facility_id"), c("status"), c("done_on", day),
                     c("planned_for", day))  # fmt: skip
    action = sa.table("follow_up_action", c("facility_id"), c("due_on", day),
                      c("completed_at", when))  # fmt: skip
    stay = sa.table("roster_stay", c("referral_id"), c("facility_id"), c("admitted_at", when),
                    c("extended_days", n), c("open", sa.Boolean()), c("over_at", when))  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for r in conn.execute(sa.select(fac.c.facility_id, fac.c.first_seen_at,
                                    fac.c.max_stay_days, fac.c.registration_pending)):  # fmt: skip
        rows[r.facility_id] = {
            "pending_count": len(r.registration_pending or []),
            "visit_since_on": _utc(r.first_seen_at).date(),
            "max": r.max_stay_days,
        }
    stamp = pool.c.last_confirmed_at
    for r in conn.execute(
        sa.select(pool.c.facility_id, sa.func.count(), sa.func.sum(pool.c.total),
                  sa.func.sum(pool.c.occupied), sa.func.min(stamp), sa.func.count(stamp))
        .group_by(pool.c.facility_id)
    ):  # fmt: skip
        if r[0] in rows:
            n, confirmed = int(r[1]), int(r[5])
            rows[r[0]].update(pool_count=n, beds=int(r[2] or 0), occupied=int(r[3] or 0),
                              capacity_confirmed_at=r[4] if n == confirmed and r[4] else None)  # fmt: skip
    done = (visit.c.status == "done") & visit.c.done_on.is_not(None)
    planned = (visit.c.status == "planned") & visit.c.planned_for.is_not(None)
    for r in conn.execute(
        sa.select(visit.c.facility_id, sa.func.max(sa.case((done, visit.c.done_on))),
                  sa.func.count(sa.case((done, 1))),
                  sa.func.min(sa.case((planned, visit.c.planned_for))))
        .group_by(visit.c.facility_id)
    ):  # fmt: skip
        if r[0] in rows:
            last: date | None = r[1]
            rows[r[0]].update(last_visit_on=last, visits_done=int(r[2]),
                              next_visit_planned_for=r[3])  # fmt: skip
            if last:
                rows[r[0]]["visit_since_on"] = last
    for r in conn.execute(
        sa.select(action.c.facility_id, sa.func.count(), sa.func.min(action.c.due_on))
        .where(action.c.completed_at.is_(None))
        .group_by(action.c.facility_id)
    ):  # fmt: skip
        if r[0] in rows:
            rows[r[0]].update(open_actions=int(r[1]), action_due_on=r[2])
    for r in conn.execute(sa.select(stay.c.referral_id, stay.c.facility_id, stay.c.admitted_at,
                                    stay.c.extended_days).where(stay.c.open)):  # fmt: skip
        row = rows.get(r.facility_id)
        if row is None or row["max"] is None:
            continue
        over = _utc(r.admitted_at) + timedelta(days=row["max"] + r.extended_days + 1)
        conn.execute(stay.update().where(stay.c.referral_id == r.referral_id).values(over_at=over))
        row["stay_over_first_at"] = min(row.get("stay_over_first_at") or over, over)
        row["stay_over_last_at"] = max(row.get("stay_over_last_at") or over, over)
    for fid, row in rows.items():
        row.pop("max")
        conn.execute(fac.update().where(fac.c.facility_id == fid).values(**row))

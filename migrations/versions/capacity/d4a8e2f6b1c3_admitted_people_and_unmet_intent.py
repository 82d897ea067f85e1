"""capacity: who a ledger admission admitted; unmet demand once per search intent, with needs

Revision ID: d4a8e2f6b1c3
Revises: c9e3a7b5d2f1
Create Date: 2026-12-06 11:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "d4a8e2f6b1c3"
down_revision: str | None = "c9e3a7b5d2f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.JSON(), nullable=True))
    with op.batch_alter_table("unmet_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("needs", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("institution_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(
            sa.Column("intent_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_unmet_request_institution_id_intent_key"),
            ["institution_id", "intent_key"],
        )


def downgrade() -> None:
    with op.batch_alter_table("unmet_request", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_unmet_request_institution_id_intent_key"), type_="unique"
        )
        batch_op.drop_column("intent_key")
        batch_op.drop_column("institution_id")
        batch_op.drop_column("needs")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_column("people")

"""capacity: ledger entries may carry an idempotency key (a referral's discharge, retried)

Revision ID: b7d41c0e9a21
Revises: f701cbfaa280
Create Date: 2026-12-04 20:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "b7d41c0e9a21"
down_revision: str | None = "f701cbfaa280"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True
            )
        )
        batch_op.create_unique_constraint(
            op.f("uq_ledger_entry_pool_id_idempotency_key"), ["pool_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_ledger_entry_pool_id_idempotency_key"), type_="unique")
        batch_op.drop_column("idempotency_key")

"""referral: a lifecycle action with a capacity step claims the referral first

Revision ID: c5e2a9f1d3b7
Revises: a3c1e7d2b9f4
Create Date: 2026-12-04 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "c5e2a9f1d3b7"
down_revision: str | None = "a3c1e7d2b9f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pending_action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("pending_token", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(sa.Column("pending_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_column("pending_since")
        batch_op.drop_column("pending_token")
        batch_op.drop_column("pending_action")

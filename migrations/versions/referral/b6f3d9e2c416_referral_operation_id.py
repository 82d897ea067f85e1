"""referral: the rescue operation (capacity's operativo) a referral comes from

Revision ID: b6f3d9e2c416
Revises: b21a7c3e9d40
Create Date: 2026-12-06 11:08:43
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "b6f3d9e2c416"
down_revision: str | None = "b21a7c3e9d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("operation_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_referral_operation_id"), ["operation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_operation_id"))
        batch_op.drop_column("operation_id")

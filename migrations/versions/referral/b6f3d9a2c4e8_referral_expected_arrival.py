"""referral: the expected arrival told when the transfer starts, and when the answer
deadline was warned of

Revision ID: b6f3d9a2c4e8
Revises: b6f3d9e2c416
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b6f3d9a2c4e8"
down_revision: str | None = "b6f3d9e2c416"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expected_arrival_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("deadline_warned_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_column("deadline_warned_at")
        batch_op.drop_column("expected_arrival_at")

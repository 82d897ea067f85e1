"""audit: the roster keeps a registration's pending checklist items and their deadline

Revision ID: 5c1d9e7a3b20
Revises: 2d9190d206f0
Create Date: 2026-12-06 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d9e7a3b20"
down_revision: str | None = "2d9190d206f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("roster_facility", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("registration_pending", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("registration_due_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("roster_facility", schema=None) as batch_op:
        batch_op.drop_column("registration_due_on")
        batch_op.drop_column("registration_pending")

"""capacity: a facility registered with observations (pending checklist items, deadline)

Revision ID: e5b9f3a7c2d4
Revises: d4a8e2f6b1c3
Create Date: 2026-12-06 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b9f3a7c2d4"
down_revision: str | None = "d4a8e2f6b1c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("registration_pending", sa.JSON(), nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("registration_due_on", sa.Date(), nullable=True))
    with op.batch_alter_table("facility_registration_step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("facility_registration_step", schema=None) as batch_op:
        batch_op.drop_column("due_on")
    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.drop_column("registration_due_on")
        batch_op.drop_column("registration_pending")

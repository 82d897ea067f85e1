"""capacity: an unmet search's person may have no recorded sex (S.I., stored as NULL)

Revision ID: c9e3a7b5d2f1
Revises: b7d41c0e9a21
Create Date: 2026-12-04 21:55:00
"""

from collections.abc import Sequence

import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "c9e3a7b5d2f1"
down_revision: str | None = "b7d41c0e9a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("unmet_request", schema=None) as batch_op:
        batch_op.alter_column(
            "sex", existing_type=sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True
        )


def downgrade() -> None:
    op.execute("UPDATE unmet_request SET sex = 'X' WHERE sex IS NULL")
    with op.batch_alter_table("unmet_request", schema=None) as batch_op:
        batch_op.alter_column(
            "sex", existing_type=sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False
        )

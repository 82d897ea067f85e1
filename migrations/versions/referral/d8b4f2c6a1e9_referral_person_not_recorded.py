"""referral: a person's sex and nationality may be not recorded (S.I., stored as NULL)

Revision ID: d8b4f2c6a1e9
Revises: e8b4d1c6a2f9
Create Date: 2026-12-04 21:50:00
"""

from collections.abc import Sequence

import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "d8b4f2c6a1e9"
down_revision: str | None = "e8b4d1c6a2f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.alter_column(
            "sex", existing_type=sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True
        )
        batch_op.alter_column(
            "nationality", existing_type=sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True
        )


def downgrade() -> None:
    op.execute("UPDATE referral_person SET sex = 'X' WHERE sex IS NULL")
    op.execute("UPDATE referral_person SET nationality = 'MEX' WHERE nationality IS NULL")
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.alter_column(
            "nationality", existing_type=sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False
        )
        batch_op.alter_column(
            "sex", existing_type=sqlmodel.sql.sqltypes.AutoString(length=1), nullable=False
        )

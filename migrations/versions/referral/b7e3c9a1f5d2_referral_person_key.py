"""referral: a pseudonymous person key; a vulnerable group not asked (S.I.) is NULL

Revision ID: b7e3c9a1f5d2
Revises: d8b4f2c6a1e9
Create Date: 2026-12-06 11:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "b7e3c9a1f5d2"
down_revision: str | None = "d8b4f2c6a1e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


EMPTY_TO_NULL = {
    "postgresql": "UPDATE referral_person SET vulnerable_groups = NULL "
    "WHERE vulnerable_groups::text = '[]'",
    "sqlite": "UPDATE referral_person SET vulnerable_groups = NULL WHERE vulnerable_groups = '[]'",
}


def upgrade() -> None:
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("person_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_referral_person_person_key"), ["person_key"], unique=False
        )
        batch_op.alter_column("vulnerable_groups", existing_type=sa.JSON(), nullable=True)
    # Until now an empty list stood for "not recorded": it is S.I., stored as NULL.
    op.execute(EMPTY_TO_NULL[op.get_context().dialect.name])


def downgrade() -> None:
    op.execute(
        "UPDATE referral_person SET vulnerable_groups = '[]' WHERE vulnerable_groups IS NULL"
    )
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.alter_column("vulnerable_groups", existing_type=sa.JSON(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_referral_person_person_key"))
        batch_op.drop_column("person_key")

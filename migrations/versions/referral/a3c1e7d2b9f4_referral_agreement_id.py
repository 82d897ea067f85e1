"""referral records the agreement it travels along

Revision ID: a3c1e7d2b9f4
Revises: ff79d08af44c
Create Date: 2026-11-23 13:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "a3c1e7d2b9f4"
down_revision: str | None = "ff79d08af44c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agreement_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.create_foreign_key(
            "fk_referral_agreement_id_agreement", "agreement", ["agreement_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_constraint("fk_referral_agreement_id_agreement", type_="foreignkey")
        batch_op.drop_column("agreement_id")

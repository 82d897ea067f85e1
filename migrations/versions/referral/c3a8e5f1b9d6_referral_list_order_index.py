"""referral: an index on the list's order (created_at, id) for keyset pages, and one on
the institution an obligation falls to (what the list shows an institution by obligation)

Revision ID: c3a8e5f1b9d6
Revises: b6f3d9a2c4e8
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3a8e5f1b9d6"
down_revision: str | None = "b6f3d9a2c4e8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index("ix_referral_created_at_id", ["created_at", "id"], unique=False)
    with op.batch_alter_table("obligation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_obligation_institution_id"), ["institution_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("obligation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_obligation_institution_id"))
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_created_at_id")

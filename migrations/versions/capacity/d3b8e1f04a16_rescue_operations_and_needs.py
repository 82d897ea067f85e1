"""capacity: rescue operations (operation, hold.operation_id) and needs-aware matching
(pool disability support, pregnancy and addiction care, reserved beds; facility
exploitation types)

Revision ID: d3b8e1f04a16
Revises: e5b9f3a7c2d4
Create Date: 2026-12-06 10:47:36
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "d3b8e1f04a16"
down_revision: str | None = "e5b9f3a7c2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ", ".join(f"'{n:02d}'" for n in range(1, 33))


def upgrade() -> None:
    op.create_table(
        "operation",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=2), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("institution_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("operation_date", sa.Date(), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(f"state IN ({STATES})", name=op.f("ck_operation_state_code")),
        sa.CheckConstraint(
            "status IN ('active', 'released')", name=op.f("ck_operation_status_allowed")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation")),
    )
    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_operation_institution_id"), ["institution_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_operation_state"), ["state"], unique=False)

    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("exploitation_types", sa.JSON(), server_default="[]", nullable=False)
        )

    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("operation_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.add_column(
            sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_hold_operation_id"), ["operation_id"], unique=False)

    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disability_support", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.add_column(
            sa.Column("pregnancy_care", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("addiction_care", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("reserved_for", sa.JSON(), server_default="[]", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("pool", schema=None) as batch_op:
        batch_op.drop_column("reserved_for")
        batch_op.drop_column("addiction_care")
        batch_op.drop_column("pregnancy_care")
        batch_op.drop_column("disability_support")

    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hold_operation_id"))
        batch_op.drop_column("referral_id")
        batch_op.drop_column("operation_id")

    with op.batch_alter_table("facility", schema=None) as batch_op:
        batch_op.drop_column("exploitation_types")

    with op.batch_alter_table("operation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operation_state"))
        batch_op.drop_index(batch_op.f("ix_operation_institution_id"))

    op.drop_table("operation")

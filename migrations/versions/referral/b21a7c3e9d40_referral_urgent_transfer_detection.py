"""referral: urgent placement without agreement, onward transfers, detection source

Revision ID: b21a7c3e9d40
Revises: 272c4becf904
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "b21a7c3e9d40"
down_revision: str | None = "272c4becf904"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "detection_source", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("without_agreement", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column(
                "without_agreement_justification",
                sqlmodel.sql.sqltypes.AutoString(length=1000),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "previous_referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True
            )
        )
        batch_op.create_index(
            batch_op.f("ix_referral_previous_referral_id"), ["previous_referral_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_referral_previous_referral_id_referral",
            "referral",
            ["previous_referral_id"],
            ["id"],
        )
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "previous_person_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True
            )
        )
        batch_op.create_foreign_key(
            "fk_referral_person_previous_person_id_referral_person",
            "referral_person",
            ["previous_person_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("referral_person", schema=None) as batch_op:
        batch_op.drop_constraint(
            "fk_referral_person_previous_person_id_referral_person", type_="foreignkey"
        )
        batch_op.drop_column("previous_person_id")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_constraint("fk_referral_previous_referral_id_referral", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_referral_previous_referral_id"))
        batch_op.drop_column("previous_referral_id")
        batch_op.drop_column("without_agreement_justification")
        batch_op.drop_column("without_agreement")
        batch_op.drop_column("detection_source")

"""capacity: a facility's contact and arrival instructions (kept with its address), and the
de-identified group a hold is for

Revision ID: d4a8c2e6f1b3
Revises: d3b8e1f04a16
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "d4a8c2e6f1b3"
down_revision: str | None = "d3b8e1f04a16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("facility_location", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("contact", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "arrival_instructions",
                sqlmodel.sql.sqltypes.AutoString(length=1000),
                nullable=True,
            )
        )

    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.add_column(sa.Column("people", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.drop_column("people")
    with op.batch_alter_table("facility_location", schema=None) as batch_op:
        batch_op.drop_column("arrival_instructions")
        batch_op.drop_column("contact")

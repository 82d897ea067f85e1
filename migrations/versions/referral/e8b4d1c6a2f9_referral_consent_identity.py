"""referral: who gave the informed consent is identity, kept in the vault (consent_identity)

The name moves out of the referral's ``consent`` JSON (returned by ``GET /referrals/{id}``)
into ``consent_identity``, disclosed only through the audited identities route; the JSON
keeps ``given_by_recorded``.

Revision ID: e8b4d1c6a2f9
Revises: c5e2a9f1d3b7
Create Date: 2026-12-04 21:50:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "e8b4d1c6a2f9"
down_revision: str | None = "c5e2a9f1d3b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

referral = sa.table("referral", sa.column("id", sa.String(36)), sa.column("consent", sa.JSON()))
consent_identity = sa.table(
    "consent_identity",
    sa.column("referral_id", sa.String(36)),
    sa.column("given_by", sa.String(200)),
)


def _rows(bind: sa.engine.Connection) -> list[tuple[str, dict[str, Any]]]:
    return [
        (rid, dict(c or {}))
        for rid, c in bind.execute(sa.select(referral.c.id, referral.c.consent))
    ]


def upgrade() -> None:
    op.create_table(
        "consent_identity",
        sa.Column("referral_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("given_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referral.id"], name=op.f("fk_consent_identity_referral_id_referral")
        ),
        sa.PrimaryKeyConstraint("referral_id", name=op.f("pk_consent_identity")),
    )
    bind = op.get_bind()
    for rid, consent in _rows(bind):
        if "given_by" not in consent and "given_by_recorded" in consent:
            continue
        name = consent.pop("given_by", None)
        if isinstance(name, str) and name.strip():
            bind.execute(sa.insert(consent_identity).values(referral_id=rid, given_by=name[:200]))
        consent["given_by_recorded"] = isinstance(name, str) and bool(name.strip())
        bind.execute(sa.update(referral).where(referral.c.id == rid).values(consent=consent))


def downgrade() -> None:
    bind = op.get_bind()
    names = dict(
        bind.execute(sa.select(consent_identity.c.referral_id, consent_identity.c.given_by)).all()
    )
    for rid, consent in _rows(bind):
        consent.pop("given_by_recorded", None)
        consent["given_by"] = names.get(rid)
        bind.execute(sa.update(referral).where(referral.c.id == rid).values(consent=consent))
    op.drop_table("consent_identity")

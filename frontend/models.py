"""The frontend's one table: server-side browser sessions (its own registry and database).

The browser holds only a random cookie value. The row is keyed by a hash of it, and the
OAuth tokens are encrypted with a key derived from it, so the table alone opens nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, LargeBinary, Text
from sqlmodel import Field, SQLModel

from services.clock import utcnow
from services.db import make_registry

reg = make_registry()
metadata = reg.metadata


class FrontendBase(SQLModel, registry=reg):
    pass


class WebSession(FrontendBase, table=True):
    """One browser's session: anonymous (CSRF, pending login) or signed in (tokens)."""

    __tablename__ = "web_sessions"

    id_hash: str = Field(primary_key=True, max_length=64)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    # A login in progress: OAuth state, PKCE verifier (encrypted), where to go afterwards.
    oauth_state: str | None = Field(default=None, max_length=64)
    pending: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)
    return_to: str | None = Field(default=None, max_length=500)
    # Signed in: who, and the encrypted token set.
    user_sub: str | None = Field(default=None, max_length=80, index=True)
    username: str | None = Field(default=None, max_length=80)
    display_name: str | None = Field(default=None, max_length=200)
    roles: str = Field(default="", max_length=400)
    institution_id: str | None = Field(default=None, max_length=36)
    tokens: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)
    access_expires_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    # Work in progress on a form spanning several pages (e.g. the people of a referral).
    draft: str | None = Field(default=None, sa_type=Text, nullable=True)

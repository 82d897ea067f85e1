"""Tables of the auth service (its own registry and database)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Text, false
from sqlmodel import Field, SQLModel

from services.clock import utcnow
from services.db import make_registry
from services.ids import new_id

reg = make_registry()
metadata = reg.metadata


class AuthBase(SQLModel, registry=reg):
    pass


class User(AuthBase, table=True):
    """A person who signs in; roles are space-separated role names."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("failed_logins >= 0", name="failed_logins_non_negative"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    username: str = Field(max_length=80, unique=True, index=True)
    display_name: str = Field(max_length=200)
    password_hash: str = Field(max_length=200)
    institution_id: str | None = Field(default=None, max_length=36, index=True)
    roles: str = Field(default="", max_length=400)
    active: bool = True
    # Set by an administrator's reset: the temporary password only opens the page that
    # replaces it (the sign-in form), never a token by itself.
    password_change_required: bool = Field(
        default=False, sa_column_kwargs={"server_default": false()}
    )
    failed_logins: int = 0
    locked_until: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_pending_secret: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

    @property
    def role_list(self) -> list[str]:
        return [r for r in self.roles.split() if r]


class OAuthClient(AuthBase, table=True):
    """A registered OAuth client; confidential clients keep only a hash of their secret."""

    __tablename__ = "oauth_clients"

    client_id: str = Field(primary_key=True, max_length=80)
    name: str = Field(max_length=200)
    secret_hash: str | None = Field(default=None, max_length=200)
    is_public: bool = False
    grant_types: str = Field(default="client_credentials", max_length=200)
    redirect_uris: str = Field(default="", sa_type=Text)
    scope: str = Field(default="", max_length=400)
    roles: str = Field(default="", max_length=400)
    institution_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SigningKey(AuthBase, table=True):
    """An ES256 signing key; the newest unretired one signs, retired ones still verify."""

    __tablename__ = "signing_keys"

    kid: str = Field(primary_key=True, max_length=80)
    alg: str = Field(default="ES256", max_length=16)
    private_jwk: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    retired_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )


class RefreshToken(AuthBase, table=True):
    """A refresh token (hash only). Rotation keeps a family; reuse revokes the family."""

    __tablename__ = "refresh_tokens"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    family_id: str = Field(max_length=36, index=True)
    client_id: str = Field(max_length=80)
    user_id: str | None = Field(default=None, max_length=36, index=True)
    scope: str = Field(default="", max_length=400)
    issued_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    rotated_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )
    revoked_at: datetime | None = Field(
        default=None, sa_type=DateTime(timezone=True), nullable=True
    )


class RevokedAccessToken(AuthBase, table=True):
    """The ``jti`` of an access token revoked before its expiry."""

    __tablename__ = "revoked_access_tokens"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
    revoked_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class AuthorizationCode(AuthBase, table=True):
    """A one-time authorization code (hash only), bound to a PKCE S256 challenge."""

    __tablename__ = "authorization_codes"

    code_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=80)
    user_id: str = Field(max_length=36)
    redirect_uri: str = Field(default="", sa_type=Text)
    scope: str = Field(default="", max_length=400)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(default="S256", max_length=10)
    nonce: str | None = Field(default=None, max_length=200)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))


class KnownInstitution(AuthBase, table=True):
    """An institution as the auth service knows it: learned from the referral service's
    ``referral.institution.created/updated`` events (and the demo's reference identities),
    so a user's roles can be checked against the institution's type."""

    __tablename__ = "known_institutions"

    id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=300)
    type: str = Field(max_length=40)
    state: str = Field(max_length=2)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))

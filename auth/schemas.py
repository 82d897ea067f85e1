"""Request and response bodies of the auth service."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from services.security import ROLES
from services.validation import SAFE_TEXT

RoleName = str


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=80, pattern=r"^[a-zA-Z0-9._-]+$")
    display_name: Annotated[str, Field(min_length=1, max_length=200), SAFE_TEXT]
    password: str = Field(min_length=12, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=len(ROLES))
    institution_id: str | None = Field(default=None, max_length=36)


class UserPublic(BaseModel):
    id: str
    username: str
    display_name: str
    roles: list[str]
    institution_id: str | None
    active: bool
    mfa_enrolled: bool


class TemporaryPassword(BaseModel):
    """A reset password, shown once to the administrator who asked for it."""

    username: str
    temporary_password: str


class ActorPublic(BaseModel):
    """Who acted, as the audit trail's readers see it: a name and an institution."""

    id: str
    display_name: str
    institution_id: str | None


class UserInfo(BaseModel):
    sub: str
    preferred_username: str | None = None
    name: str | None = None
    roles: list[str]
    institution_id: str | None = None


class TotpEnrolment(BaseModel):
    otpauth_uri: str


class TotpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=8, pattern=r"^[0-9]+$")

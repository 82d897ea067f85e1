"""Typed contracts of the events the auth service produces (see services.contracts.base).

Built by ``auth.service`` and ``auth.federation``. Passwords, secrets and tokens never
appear in them; a failed sign-in names the username tried (at most 80 characters).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SerializerFunctionWrapHandler, model_serializer

from services.contracts.base import EventPayload, contract


class _SparsePayload(EventPayload):
    """A payload with variants: the ``OPTIONAL`` fields a variant has not are left out of
    its JSON (not sent as null), so each variant keeps its historical shape."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in self.OPTIONAL}


@contract("auth.user.created", aggregate="user")
class UserCreated(EventPayload):
    roles: list[str]


@contract("auth.user.password_reset", aggregate="user")
class PasswordReset(EventPayload):
    """An operator or administrator set a new password (none is carried)."""


@contract("auth.user.deactivated", aggregate="user")
class UserDeactivated(EventPayload):
    """An administrator deactivated the account: it can no longer sign in."""


@contract("auth.user.reactivated", aggregate="user")
class UserReactivated(EventPayload):
    """An administrator reactivated the account."""


@contract("auth.user.locked", aggregate="user")
class UserLocked(EventPayload):
    """Too many failed sign-ins: locked until then (ISO 8601)."""

    until: str | None


@contract("auth.login.failed", aggregate="user")
class LoginFailed(EventPayload):
    username: str
    reason: str


@contract("auth.login.succeeded", aggregate="user")
class LoginSucceeded(_SparsePayload):
    """A sign-in; a federated one names its provider and the roles it mapped."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"federated", "roles"})
    mfa: bool
    federated: str | None = None
    roles: list[str] | None = None


@contract("auth.mfa.enrolled", aggregate="user")
class MfaEnrolled(EventPayload):
    """A second factor (TOTP) was confirmed."""


@contract("auth.token.revoked", aggregate="token")
class TokenRevoked(_SparsePayload):
    """A refresh-token family (``sid``, ``until``: the last expiry of its access tokens, a
    Unix time) or one access token (its ``exp``) revoked; services deny them until then."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"reason", "sid", "until", "exp"})
    token_type: str
    reason: str | None = None
    sid: str | None = None
    until: int | None = None
    exp: int | None = None


class FamilyRevoked(TokenRevoked):
    """A refresh-token family revoked (its event's aggregate is the family)."""

    AGGREGATE: ClassVar[str] = "refresh_token_family"
    token_type: str = "refresh_token"  # noqa: S105 (a token kind, not a secret)


class AccessTokenRevoked(TokenRevoked):
    """One access token revoked (its event's aggregate is the token's ``jti``)."""

    AGGREGATE: ClassVar[str] = "access_token"
    token_type: str = "access_token"  # noqa: S105 (a token kind, not a secret)

"""Who may do what in the auth service (see docs/security/permissions.md)."""

from __future__ import annotations

from auth.exceptions import InstitutionScopeForbidden
from services.errors import Forbidden
from services.tokens import Principal
from services.vocabulary import UserRole

# Roles an institution admin may not hand out.
PLATFORM_ONLY_ROLES = frozenset(
    {UserRole.PLATFORM_ADMIN, UserRole.SERVICE, UserRole.SEGOB_AUDITOR, UserRole.OBSERVER}
)


def ensure_can_manage_users(principal: Principal, *, institution_id: str | None) -> None:
    """Platform admins manage every user; institution admins only their institution's."""
    if principal.has(UserRole.PLATFORM_ADMIN):
        return
    if principal.has(UserRole.INSTITUTION_ADMIN):
        if institution_id is None or institution_id != principal.institution_id:
            raise InstitutionScopeForbidden(
                "Solo puede administrar usuarios de su propia institución."
            )
        return
    raise Forbidden("Su rol no permite administrar usuarios.", code="forbidden_role")


def ensure_can_grant_roles(principal: Principal, roles: list[str]) -> None:
    """Institution admins cannot create platform-wide or oversight roles."""
    if principal.has(UserRole.PLATFORM_ADMIN):
        return
    if set(roles) & PLATFORM_ONLY_ROLES:
        raise Forbidden(
            "Solo un administrador de la plataforma puede otorgar esos roles.",
            code="forbidden_role",
        )


def ensure_can_read_actors(principal: Principal) -> None:
    """Names of who acted: for those who read the audit trail (SEGOB, platform admins)."""
    if not principal.has(UserRole.PLATFORM_ADMIN, UserRole.SEGOB_AUDITOR):
        raise Forbidden("Su rol no permite consultar quién actuó.", code="forbidden_role")

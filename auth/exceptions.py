"""Domain errors of the auth service."""

from __future__ import annotations

from services.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable


class UserNotFound(NotFound):
    code = "user_not_found"


class UsernameTaken(Conflict):
    code = "username_taken"


class ClientExists(Conflict):
    code = "client_exists"


class InstitutionScopeForbidden(Forbidden):
    code = "forbidden_institution"


class InvalidTotp(BadRequest):
    code = "invalid_totp"


class InstitutionUnknown(Unprocessable):
    """A user named an institution the platform does not know."""

    code = "institution_not_found"


class RoleNotAllowedForInstitution(Unprocessable):
    """A role the institution's type does not allow (an NGO's prosecutor, say)."""

    code = "role_not_allowed_for_institution"

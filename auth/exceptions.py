"""Domain errors of the auth service."""

from __future__ import annotations

from services.errors import BadRequest, Conflict, Forbidden, NotFound


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

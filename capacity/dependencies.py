"""Request-scoped dependencies of the capacity service, and Spanish validation messages."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlmodel import Session

from capacity import permissions
from capacity.database import db
from services.security import PrincipalDep
from services.tokens import Principal

SessionDep = Annotated[Session, Depends(db.request_session, scope="function")]


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """The write transaction of one request, opened inside the handler's own thread.

    Writes take SQLite's lock when they begin. Opened from a dependency, the lock would be
    taken in one thread-pool call and released (commit) in another; with many concurrent
    writers every pool thread can end up waiting for a lock whose holder waits for a
    thread. Taking and releasing it in the same call cannot starve.
    """
    yield from db.session_scope(write=True)


async def capacity_principal(principal: PrincipalDep) -> Principal:
    """The caller, if their role may use the capacity service at all."""
    permissions.ensure_capacity_access(principal)
    return principal


CapacityPrincipal = Annotated[Principal, Depends(capacity_principal)]

_MESSAGES: dict[str, str] = {
    "greater_than_equal": "debe ser mayor o igual a {ge}",
    "greater_than": "debe ser mayor que {gt}",
    "less_than_equal": "debe ser menor o igual a {le}",
    "less_than": "debe ser menor que {lt}",
    "string_too_long": "admite como máximo {max_length} caracteres",
    "string_too_short": "debe tener al menos {min_length} caracteres",
    "too_long": "admite como máximo {max_length} elementos",
    "too_short": "debe tener al menos {min_length} elementos",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero, sin decimales",
    "float_parsing": "debe ser un número",
    "float_type": "debe ser un número",
    "bool_parsing": "debe ser verdadero o falso (true/false)",
    "bool_type": "debe ser verdadero o falso (true/false)",
    "string_type": "debe ser texto",
    "list_type": "debe ser una lista",
    "dict_type": "debe ser un objeto",
    "model_type": "debe ser un objeto",
    "model_attributes_type": "debe ser un objeto",
    "json_invalid": "el cuerpo no es JSON válido",
    "json_type": "el cuerpo no es JSON válido",
    "literal_error": "valor no admitido; use uno de: {expected}",
    "enum": "valor no admitido; use uno de: {expected}",
    "string_pattern_mismatch": "formato inválido",
    "finite_number": "debe ser un número finito",
    "missing": "campo obligatorio",
    "extra_forbidden": "campo desconocido",
}


def spanish(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors with Spanish messages (custom errors are Spanish already)."""
    out = []
    for err in errors:
        err = dict(err)
        kind = err.get("type", "")
        ctx = {k: str(v).replace(" or ", " o ") for k, v in (err.get("ctx") or {}).items()}
        if kind in _MESSAGES:
            try:
                err["msg"] = _MESSAGES[kind].format(**ctx)
            except (KeyError, IndexError):
                err["msg"] = _MESSAGES[kind].split(";")[0]
        elif kind == "value_error":
            err["msg"] = str(err.get("msg", "")).removeprefix("Value error, ")
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            err["msg"] = "tipo de dato inválido"
        err.pop("ctx", None)
        err.pop("url", None)
        out.append(err)
    return out


class SpanishRoute(APIRoute):
    """Routes whose validation errors read in Spanish."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise RequestValidationError(spanish(list(exc.errors())), body=exc.body) from None

        return route

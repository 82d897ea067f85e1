"""The error model: every failure a client can cause is a 4xx ``{"error", "detail"}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("canaliza.errors")


class CanalizaError(Exception):
    """A domain error that carries its HTTP status and machine code."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(CanalizaError):
    status_code = 400
    code = "bad_request"


class Unauthorized(CanalizaError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str = "Se requiere un token de acceso válido.", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(CanalizaError):
    status_code = 403
    code = "forbidden"


class NotFound(CanalizaError):
    status_code = 404
    code = "not_found"


class Conflict(CanalizaError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(CanalizaError):
    status_code = 412
    code = "precondition_failed"


class PayloadTooLarge(CanalizaError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(CanalizaError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(CanalizaError):
    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(CanalizaError):
    status_code = 503
    code = "service_unavailable"


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    431: "headers_too_large",
}

# Starlette/FastAPI's own English sentences, as the users read them.
_SPANISH_DETAILS = {
    "There was an error parsing the body": "El cuerpo no es JSON válido en UTF-8.",
}


def error_response(
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Render the contract's error body."""
    return JSONResponse({"error": code, "detail": detail, **extra}, status, headers=headers)


def describe_validation_errors(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Turn pydantic's error list into one readable sentence and a compact field list."""
    fields = []
    sentences = []
    for err in errors[:20]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        where = ".".join(loc) or "cuerpo"
        msg = str(err.get("msg", "valor inválido"))
        if err.get("type") == "extra_forbidden":
            msg = "campo desconocido"
        elif err.get("type") == "json_invalid":
            where, msg = "cuerpo", "no es JSON válido"
        elif err.get("type") == "missing":
            msg = "campo obligatorio"
        fields.append({"field": where, "message": msg})
        sentences.append(f"{where}: {msg}")
    return "Datos inválidos — " + "; ".join(sentences), fields


# Pydantic's messages in Spanish, by error type, for every service's 422 answers.
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


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, expected or not, an answer in the contract's shape."""

    @app.exception_handler(CanalizaError)
    async def _domain(_: Request, exc: CanalizaError) -> JSONResponse:
        return JSONResponse(exc.body(), exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail, fields = describe_validation_errors(spanish(list(exc.errors())))
        return error_response(422, "validation_error", detail, fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        detail = _SPANISH_DETAILS.get(detail, detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "No existe ese recurso."
        elif exc.status_code == 405:
            detail = "Método no permitido en este recurso."
        return error_response(exc.status_code, code, detail, headers=exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity error: %s", exc.orig)
        return error_response(
            409, "conflict", "El cambio contradice el estado actual de los datos; nada se guardó."
        )

    @app.exception_handler(OperationalError)
    async def _operational(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return error_response(
            503,
            "service_unavailable",
            "La base de datos no está disponible en este momento; intente de nuevo.",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(PoolTimeoutError)
    async def _pool(_: Request, exc: PoolTimeoutError) -> JSONResponse:
        return error_response(
            503,
            "service_unavailable",
            "El servicio está saturado; intente de nuevo.",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(
            500, "internal_error", "Error interno; el incidente quedó registrado."
        )

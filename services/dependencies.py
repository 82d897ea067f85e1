"""FastAPI dependencies every service shares (beyond the principal, in ``services.security``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from services.errors import Unprocessable


def if_match_version(
    if_match: Annotated[str | None, Header(max_length=40)] = None,
) -> int | None:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` → 3; absent → None.

    Malformed is 422 ``bad_if_match``; a stale version is the service's own 412.
    """
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit() or len(raw) > 18:
        raise Unprocessable(
            "El encabezado If-Match debe llevar el número de versión del recurso.",
            code="bad_if_match",
        )
    return int(raw)


IfMatchDep = Annotated[int | None, Depends(if_match_version)]

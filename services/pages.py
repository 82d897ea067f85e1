"""Keyset (cursor) pagination: a page starts after the last row of the one before.

A cursor is the sort key of a page's last row, opaque to clients (URL-safe base64 of its
JSON). Unlike an offset it stays correct while rows are added or removed, and a page costs
the same wherever it falls in the list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, tuple_
from starlette.requests import Request
from starlette.responses import Response

from services.errors import Unprocessable

T = TypeVar("T")

INVALID_CURSOR = "invalid_cursor"
MAX_CURSOR_LENGTH = 600


NEXT_CURSOR_HEADER = "X-Next-Cursor"
MAX_PAGE = 500


def encode_cursor(key: tuple[Any, ...]) -> str:
    """The opaque cursor of a row whose sort key is ``key`` (strings, numbers, datetimes —
    a datetime travels as its ISO text; :func:`cursor_time` reads it back)."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> tuple[Any, ...]:
    """The sort key a cursor names; a 422 ``invalid_cursor`` for anything it did not make."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(key, list) or len(key) != arity:
            raise ValueError("shape")
        if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in key):
            raise ValueError("values")
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise invalid_cursor() from exc
    return tuple(key)


def invalid_cursor() -> Unprocessable:
    """The 422 ``invalid_cursor`` for a cursor whose key does not fit the list (raise it)."""
    return Unprocessable(
        "cursor: no es un cursor de esta lista; pida la primera página sin cursor y siga "
        "el next_cursor de cada respuesta.",
        code=INVALID_CURSOR,
    )


def cursor_time(value: Any) -> datetime:
    """A datetime a cursor carried as ISO text; a 422 ``invalid_cursor`` for anything else."""
    if not isinstance(value, str):
        raise invalid_cursor()
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid_cursor() from exc


def after(
    columns: Sequence[ColumnElement[Any]], key: tuple[Any, ...], *, descending: bool = False
) -> ColumnElement[bool]:
    """The keyset condition "rows after ``key``" for a list ordered by ``columns`` (all
    ascending, or all descending): a row-value comparison both SQLite and PostgreSQL
    answer from an index on those columns."""
    row = tuple_(*columns)
    return row < tuple_(*key) if descending else row > tuple_(*key)


def split_page(
    rows: Sequence[T], limit: int, key_of: Callable[[T], tuple[Any, ...]]
) -> tuple[list[T], str | None]:
    """Given up to ``limit + 1`` rows read in the list's order, the page and the cursor of
    the next one (``None`` when this is the last)."""
    if len(rows) <= limit:
        return list(rows), None
    page = list(rows[:limit])
    return page, encode_cursor(key_of(page[-1]))


def announce_next(request: Request, response: Response, next_cursor: str | None) -> None:
    """For a list whose body is the contract's JSON array, the next page travels in headers:
    ``X-Next-Cursor`` and an RFC 8288 ``Link: <same path and query, with cursor>; rel="next"``
    (relative, so it holds behind the gateway). Nothing on the last page."""
    if next_cursor is None:
        return
    url = request.url.include_query_params(cursor=next_cursor)
    response.headers[NEXT_CURSOR_HEADER] = next_cursor
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'

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
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import ColumnElement, tuple_
from sqlalchemy.orm import Mapped
from starlette.requests import Request
from starlette.responses import Response

from services.errors import Unprocessable

T = TypeVar("T")

INVALID_CURSOR = "invalid_cursor"
MAX_CURSOR_LENGTH = 600


NEXT_CURSOR_HEADER = "X-Next-Cursor"
MAX_PAGE = 500


# A list's query parameters: its handler gives ``limit`` its default.
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page (1-500).")]
PageCursor = Annotated[
    str | None,
    Query(description="The X-Next-Cursor of the page before; none for the first page."),
]


def page_key(cursor: str | None, *kinds: type) -> tuple[Any, ...] | None:
    """The sort key a page starts after (``None``: the first page), each value of the kind
    its column holds (``str``, ``int`` or ``datetime``): a key of other kinds is a 422
    ``invalid_cursor``, never a comparison the database refuses."""
    if cursor is None:
        return None
    key = decode_cursor(cursor, len(kinds))
    out: list[Any] = []
    for value, kind in zip(key, kinds, strict=True):
        if kind is datetime:
            out.append(cursor_time(value))
        elif isinstance(value, kind) and not (isinstance(value, str) and "\x00" in value):
            out.append(value)  # (PostgreSQL refuses a NUL in text: never bound)
        else:
            raise invalid_cursor()
    return tuple(out)


def no_offset_with(cursor: str | None, offset: int) -> None:
    """A page is found by its cursor or (deprecated) by its offset, never by both."""
    if cursor is not None and offset:
        raise Unprocessable(
            "cursor: no se combina con offset; siga el next_cursor desde la primera página.",
            code=INVALID_CURSOR,
        )


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
    """A datetime a cursor carried as ISO text (one with an offset, in UTC); a 422
    ``invalid_cursor`` for anything else, a time UTC cannot hold included."""
    if not isinstance(value, str):
        raise invalid_cursor()
    try:
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo is not None else moment
    except (ValueError, OverflowError) as exc:
        raise invalid_cursor() from exc


def after(
    columns: Sequence[ColumnElement[Any] | Mapped[Any]],
    key: tuple[Any, ...],
    *,
    descending: bool = False,
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

"""Keyset (cursor) pagination: a page starts after the last row of the one before.

A cursor is the sort key of a page's last row, opaque to clients (URL-safe base64 of its
JSON). Unlike an offset it stays correct while rows are added or removed, and a page costs
the same wherever it falls in the list.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.errors import Unprocessable

INVALID_CURSOR = "invalid_cursor"
MAX_CURSOR_LENGTH = 600


def encode_cursor(key: tuple[Any, ...]) -> str:
    """The opaque cursor of a row whose sort key is ``key`` (strings and numbers)."""
    raw = json.dumps(list(key), separators=(",", ":"), ensure_ascii=False).encode()
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
        raise Unprocessable(
            "cursor: no es un cursor de esta lista; pida la primera página sin cursor y siga "
            "el next_cursor de cada respuesta.",
            code=INVALID_CURSOR,
        ) from exc
    return tuple(key)

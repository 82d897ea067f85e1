"""Lists that scale: a text search and pages, the same on every list screen.

A list the API pages by cursor (ADR 0026) is searched and paged by the service: the screen
sends the search and shows the page it gets, with a link to the older ones
(:func:`api_page`, ``_cursor_pages.html``). A list the API answers whole is narrowed here
by a search, then shown a page at a time (:func:`matching`, :func:`paginate`,
``_pages.html``). ``_search.html`` is the search form of both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from frontend.api import Api, ApiError
from frontend.i18n import TIMEZONE
from services.countries import collation_key
from services.pages import INVALID_CURSOR, MAX_CURSOR_LENGTH

T = TypeVar("T")
PAGE_SIZE = 25
MAX_QUERY = 100
CURSOR_PARAM = "siguiente"  # where a page of a cursor-paged list starts, in the screen's URL
_CURSOR = re.compile(rf"^[A-Za-z0-9_-]{{1,{MAX_CURSOR_LENGTH}}}$")


def query_of(raw: str | None) -> str:
    """The search as typed, trimmed and bounded."""
    return " ".join((raw or "").split())[:MAX_QUERY]


def matching(items: Iterable[T], query: str, text_of: Callable[[T], Iterable[str]]) -> list[T]:
    """Items whose text holds every word of ``query`` (case and accents ignored)."""
    words = collation_key(query).split()
    if not words:
        return list(items)
    found = []
    for item in items:
        haystack = collation_key(" ".join(t for t in text_of(item) if t))
        if all(w in haystack for w in words):
            found.append(item)
    return found


@dataclass(frozen=True)
class Paged(Generic[T]):
    items: Sequence[T]
    number: int
    pages: int
    total: int
    base: str  # the list's URL with its filters, without the page

    def link(self, number: int) -> str:
        joiner = "&" if "?" in self.base else "?"
        return f"{self.base}{joiner}{urlencode({'pagina': number})}"


def paginate(
    items: Sequence[T], pagina: str | None, *, path: str, filters: dict[str, str]
) -> Paged[T]:
    """One page of ``items`` (``pagina`` as typed in the URL; out of range → the nearest)."""
    wanted = int(pagina) if pagina and pagina.isdigit() and len(pagina) < 7 else 1
    pages = max(1, -(-len(items) // PAGE_SIZE))
    number = min(max(1, wanted), pages)
    start = (number - 1) * PAGE_SIZE
    kept = {k: v for k, v in filters.items() if v}
    base = f"{path}?{urlencode(kept)}" if kept else path
    return Paged(items[start : start + PAGE_SIZE], number, pages, len(items), base)


def day_of(raw: str | None) -> date | None:
    """A day typed in a date field (``AAAA-MM-DD``); anything else is no day."""
    try:
        return date.fromisoformat(raw) if raw and len(raw) == 10 else None
    except ValueError:
        return None


def day_range(first: date | None, last: date | None) -> dict[str, str]:
    """The API's ``created_from``/``created_to`` for days in Mexico City time, both
    included (the wrong way round, they are swapped)."""
    if first and last and first > last:
        first, last = last, first
    bounds: dict[str, str] = {}
    if first:
        bounds["created_from"] = datetime.combine(first, time(), TIMEZONE).isoformat()
    if last:
        bounds["created_to"] = datetime.combine(last, time.max, TIMEZONE).isoformat()
    return bounds


@dataclass(frozen=True)
class CursorPage:
    """One page of a list the API pages by cursor: newest first, older ones follow."""

    items: Sequence[dict[str, Any]]
    base: str  # the list's URL with its filters: its first page
    next_cursor: str | None
    later: bool  # a page after the first

    @property
    def next_link(self) -> str:
        joiner = "&" if "?" in self.base else "?"
        return f"{self.base}{joiner}{urlencode({CURSOR_PARAM: self.next_cursor or ''})}"

    @property
    def whole(self) -> bool:
        """The first page is the whole list: its length is the number found."""
        return not self.later and self.next_cursor is None


async def api_page(
    api: Api,
    service: str,
    path: str,
    *,
    params: Mapping[str, str],
    cursor: str | None,
    screen: str,
    filters: Mapping[str, str],
) -> CursorPage:
    """The page of ``path`` (searched with ``params``) that starts at ``cursor`` as typed in
    the screen's URL; a cursor the API does not know gives the first page."""
    kept = {k: v for k, v in filters.items() if v}
    base = f"{screen}?{urlencode(kept)}" if kept else screen
    start = cursor if cursor and _CURSOR.match(cursor) else None
    query = {**params, "limit": str(PAGE_SIZE)}
    try:
        items, nxt = await api.get_page(
            service, path, params={**query, **({"cursor": start} if start else {})}
        )
    except ApiError as exc:
        if start is None or exc.error != INVALID_CURSOR:
            raise
        start = None
        items, nxt = await api.get_page(service, path, params=query)
    return CursorPage(items, base, nxt, start is not None)

"""Lists that scale: a text search and pages, the same on every list screen.

The services answer whole lists today (cursor pagination is coming to the API); the screen
narrows them by a search, then shows one page. ``_search.html`` and ``_pages.html`` are
the matching template partials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlencode

from services.countries import collation_key

T = TypeVar("T")
PAGE_SIZE = 25
MAX_QUERY = 100


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

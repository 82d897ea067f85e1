"""Walking a list endpoint's pages by their cursors, as a client does (services.pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


async def walk(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    *,
    limit: int,
    items: Callable[[Any], list[Any]] = list,
    params: dict[str, Any] | None = None,
) -> tuple[list[Any], int]:
    """Every item of a list, page after page following ``X-Next-Cursor``, and the number
    of pages; each ``Link: rel="next"`` must name the same next page."""
    got: list[Any] = []
    pages = 0
    query: dict[str, Any] = {**(params or {}), "limit": limit}
    while True:
        r = await client.get(url, params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = items(r.json())
        assert len(page) <= limit
        got.extend(page)
        pages += 1
        cursor = r.headers.get("x-next-cursor")
        if cursor is None:
            assert "link" not in r.headers
            return got, pages
        assert len(page) == limit
        assert r.headers["link"].endswith(f'cursor={cursor}>; rel="next"'), r.headers["link"]
        query = {**query, "cursor": cursor}

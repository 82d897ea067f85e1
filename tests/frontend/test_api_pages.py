"""Issue 18: a screen that needs a whole list follows its pages' ``X-Next-Cursor``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from frontend import api


async def test_get_every_follows_the_cursor_to_the_last_page(monkeypatch) -> None:
    pages = {
        None: ({"items": [1, 2], "total": 5}, "c1"),
        "c1": ({"items": [3, 4], "total": 5}, "c2"),
        "c2": ({"items": [5], "total": 5}, None),
    }
    asked: list[dict[str, Any]] = []

    async def call(runtime: Any, service: str, method: str, path: str, **kw: Any) -> httpx.Response:
        params = kw["params"]
        asked.append(params)
        body, nxt = pages[params.get("cursor")]
        headers = {"X-Next-Cursor": nxt} if nxt else {}
        return httpx.Response(200, json=body, headers=headers)

    async def token() -> str:
        return "t"

    monkeypatch.setattr(api, "call", call)
    client = api.Api(runtime=None, token=token)  # type: ignore[arg-type]
    rows = await client.get_every(
        "capacity", "/api/v1/facilities", items="items", params={"state": "09", "limit": 2}
    )
    assert rows == [1, 2, 3, 4, 5]
    assert asked == [
        {"state": "09", "limit": 2},
        {"state": "09", "limit": 2, "cursor": "c1"},
        {"state": "09", "limit": 2, "cursor": "c2"},
    ]


async def test_get_every_reads_a_bare_list_and_raises_the_api_error(monkeypatch) -> None:
    answers = iter(
        [
            httpx.Response(200, json=[{"id": "a"}], headers={"X-Next-Cursor": "n"}),
            httpx.Response(422, json={"error": "invalid_cursor", "detail": "cursor"}),
        ]
    )

    async def call(*args: Any, **kw: Any) -> httpx.Response:
        return next(answers)

    async def token() -> str:
        return "t"

    monkeypatch.setattr(api, "call", call)
    client = api.Api(runtime=None, token=token)  # type: ignore[arg-type]
    with pytest.raises(api.ApiError) as caught:
        await client.get_every("auth", "/api/v1/auth/users")
    assert caught.value.status == 422

"""The one keyset-pagination convention every list endpoint follows (services.pages)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Query, Response
from fastapi.testclient import TestClient
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine, select
from starlette.requests import Request

from services.errors import Unprocessable
from services.pages import (
    NEXT_CURSOR_HEADER,
    after,
    announce_next,
    cursor_time,
    decode_cursor,
    encode_cursor,
    page_key,
    split_page,
)


def test_a_datetime_travels_in_a_cursor_and_comes_back_equal() -> None:
    moment = datetime(2026, 11, 23, 12, 30, 5, 123456, tzinfo=UTC)
    key = decode_cursor(encode_cursor((moment, "abc")), 2)
    assert cursor_time(key[0]) == moment
    assert key[1] == "abc"


@pytest.mark.parametrize("bad", [3, "ayer", None, "0001-01-01T00:00:00+01:00"])
def test_a_cursor_time_that_is_not_a_time_is_an_invalid_cursor(bad: object) -> None:
    with pytest.raises(Unprocessable) as caught:
        cursor_time(bad)
    assert caught.value.code == "invalid_cursor"


def test_a_text_key_with_a_nul_is_an_invalid_cursor() -> None:
    assert page_key(encode_cursor(("r07", 7)), str, int) == ("r07", 7)
    with pytest.raises(Unprocessable) as caught:
        page_key(encode_cursor(("r\x0007", 7)), str, int)
    assert caught.value.code == "invalid_cursor"


def test_keyset_pages_walk_every_row_once_in_order_both_ways() -> None:
    meta = MetaData()
    rows = Table("rows", meta, Column("at", DateTime), Column("id", String), Column("n", Integer))
    engine = create_engine("sqlite://")
    meta.create_all(engine)
    base = datetime(2026, 1, 1)
    data = [{"at": base.replace(day=1 + i % 5), "id": f"r{i:02d}", "n": i} for i in range(23)]
    with engine.begin() as conn:
        conn.execute(rows.insert(), data)
    for descending in (False, True):
        order = [rows.c.at.desc(), rows.c.id.desc()] if descending else [rows.c.at, rows.c.id]
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            stmt = select(rows).order_by(*order).limit(6)
            if cursor is not None:
                at, ident = decode_cursor(cursor, 2)
                stmt = stmt.where(
                    after([rows.c.at, rows.c.id], (cursor_time(at), ident), descending=descending)
                )
            with engine.connect() as conn:
                got = list(conn.execute(stmt))
            page, cursor = split_page(got, 5, lambda r: (r.at, r.id))
            seen.extend(r.id for r in page)
            pages += 1
            if cursor is None:
                break
        expected = sorted(data, key=lambda d: (d["at"], d["id"]), reverse=descending)
        assert seen == [d["id"] for d in expected]
        assert pages == 5


def test_the_next_page_is_announced_in_headers_and_the_last_page_announces_nothing() -> None:
    app = FastAPI()

    @app.get("/things")
    def things(request: Request, response: Response, cursor: str | None = Query(None)) -> list[int]:
        announce_next(request, response, None if cursor else encode_cursor(("b", 2)))
        return [1]

    client = TestClient(app)
    first = client.get("/things", params={"status": "open", "limit": 1})
    nxt = first.headers[NEXT_CURSOR_HEADER]
    assert decode_cursor(nxt, 2) == ("b", 2)
    assert first.headers["link"] == f'</things?status=open&limit=1&cursor={nxt}>; rel="next"'
    last = client.get("/things", params={"cursor": nxt})
    assert NEXT_CURSOR_HEADER.lower() not in last.headers
    assert "link" not in last.headers


def test_a_page_key_holds_the_kinds_of_its_columns_or_is_an_invalid_cursor() -> None:
    moment = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
    assert page_key(None, str) is None
    assert page_key(encode_cursor((moment, "h1")), datetime, str) == (moment, "h1")
    assert page_key(encode_cursor((7,)), int) == (7,)
    for key, kinds in (
        (("a",), (int,)),
        ((1, 2, 3), (str, str, str)),
        (("ayer", "h1"), (datetime, str)),
        (("a", "b"), (str,)),
    ):
        with pytest.raises(Unprocessable) as caught:
            page_key(encode_cursor(key), *kinds)
        assert caught.value.code == "invalid_cursor"

"""The referral service's lists: keyset pages in headers, search and filters, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from referral import listing
from referral.catalogue import folio
from referral.models import Referral
from services.clock import clock
from services.pages import NEXT_CURSOR_HEADER, encode_cursor
from tests.referral.conftest import DIF, FGR, INM, NGO, OTHER_NGO

# Ten days ago at 15:00 UTC: agreements made today still cover it, its day holds every row.
START = datetime.now(UTC).replace(hour=15, minute=0, second=0, microsecond=0) - timedelta(days=10)


async def _walk(ctx, headers: dict[str, str], path: str, **params: Any) -> list[list[dict]]:
    """Every page of a list, following each page's ``Link: rel="next"``."""
    pages: list[list[dict]] = []
    r = await ctx.client.get(path, params=params, headers=headers)
    while True:
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if "link" not in r.headers:
            assert NEXT_CURSOR_HEADER not in r.headers
            return pages
        nxt = r.headers[NEXT_CURSOR_HEADER]
        link = r.headers["link"]
        assert link.startswith(f"<{path}?") and link.endswith('>; rel="next"')
        assert f"cursor={nxt}" in link
        r = await ctx.client.get(link[1 : link.index(">")], headers=headers)


def _newest_first(refs: list[dict]) -> list[str]:
    return [
        r["id"]
        for r in sorted(
            refs, key=lambda r: (datetime.fromisoformat(r["created_at"]), r["id"]), reverse=True
        )
    ]


async def _mixed(ctx) -> list[dict]:
    """Referrals of two senders to two shelters, minutes apart, some at the same instant
    (so the id decides their order), one with a foreign woman (INM sees it by obligation)."""
    clock.freeze(START)
    made: list[dict] = []
    for i in range(13):
        if i % 4 != 3:  # every fourth shares the instant of the one before
            clock.advance(timedelta(minutes=7))
        if i % 3 == 2:
            body = ctx.referral_body(
                sending_institution_id=DIF, receiving_institution_id=OTHER_NGO, facility_id="fac-2"
            )
            dif = ctx.h("dif_officer", institution_id=DIF, sub="dif")  # a token of this instant
            r = await ctx.client.post("/api/v1/referrals", json=body, headers=dif)
            assert r.status_code == 201, r.text
            made.append(r.json())
            continue
        over: dict[str, Any] = {"case_reference": f"FED/FEVIMTRA/CDMX/{i:04d}/2026"}
        if i % 3 == 1:
            over.update(receiving_institution_id=OTHER_NGO, facility_id="fac-2")
        if i == 4:
            over["people"] = [{"sex": "F", "age": 24, "role": "victim", "nationality": "HND"}]
        made.append(await ctx.referral(**over))
    return made


async def test_every_page_walks_each_visible_referral_once_newest_first(ctx):
    made = await _mixed(ctx)
    other_coord = ctx.h("shelter_coordinator", institution_id=OTHER_NGO, sub="otra")
    viewers = {
        "fiscal": (ctx.fiscal, lambda r: r["sending_institution_id"] == FGR),
        "coord": (ctx.coord, lambda r: r["receiving_institution_id"] == NGO),
        "other": (other_coord, lambda r: r["receiving_institution_id"] == OTHER_NGO),
        "inm": (
            ctx.h("inm_officer", institution_id=INM, sub="inm"),
            lambda r: any(p.get("nationality") == "HND" for p in r["people"]),
        ),
        "auditor": (ctx.h("segob_auditor", institution_id=None), lambda r: True),
    }
    for name, (headers, sees) in viewers.items():
        expected = _newest_first([r for r in made if sees(r)])
        pages = await _walk(ctx, headers, "/api/v1/referrals", limit=2)
        assert [r["id"] for page in pages for r in page] == expected, name
        assert [len(p) for p in pages[:-1]] == [2] * (len(pages) - 1), name
        assert len(pages) == -(-len(expected) // 2) or (not expected and len(pages) == 1), name
    # each row as that caller sees it: the shelter reads no case file before accepting
    page = (await ctx.client.get("/api/v1/referrals?limit=3", headers=ctx.coord)).json()
    for row in page:
        alone = await ctx.client.get(f"/api/v1/referrals/{row['id']}", headers=ctx.coord)
        assert row == alone.json()
        assert row["folio"] == folio(row["id"])
        assert row["deidentified"] and row["case_reference"] is None


def test_referrals_made_in_the_same_moment_have_distinct_folios():
    """The folio is the id's first characters: a referral's id must not start with its time
    (other rows get time-ordered ids, services.ids / ADR 0034)."""
    make_id = Referral.model_fields["id"].default_factory
    assert make_id is not None
    folios = {folio(make_id()) for _ in range(200)}  # type: ignore[call-arg]
    assert len(folios) == 200


async def test_without_limit_the_newest_page_and_the_cursor_of_the_rest(ctx, monkeypatch):
    made = await _mixed(ctx)
    monkeypatch.setattr(listing, "DEFAULT_PAGE", 5)
    r = await ctx.client.get("/api/v1/referrals", headers=ctx.fiscal)
    expected = _newest_first([m for m in made if m["sending_institution_id"] == FGR])
    assert [x["id"] for x in r.json()] == expected[:5]
    rest = await ctx.client.get(
        "/api/v1/referrals",
        params={"cursor": r.headers[NEXT_CURSOR_HEADER], "limit": 500},
        headers=ctx.fiscal,
    )
    assert [x["id"] for x in rest.json()] == expected[5:]
    assert "link" not in rest.headers


async def test_search_by_folio_case_file_institution_reason_and_dates(ctx):
    made = await _mixed(ctx)
    fgr = [m for m in made if m["sending_institution_id"] == FGR]
    target = fgr[1]

    async def ids(headers: dict[str, str], **params: Any) -> list[str]:
        pages = await _walk(ctx, headers, "/api/v1/referrals", limit=2, **params)
        return [r["id"] for page in pages for r in page]

    assert await ids(ctx.fiscal, q=folio(target["id"])) == [target["id"]]
    assert await ids(ctx.fiscal, q=folio(target["id"]).lower()) == [target["id"]]
    number = target["case_reference"].split("/")[3]
    assert await ids(ctx.fiscal, q=f" cdmx  {number}/2026 ") == [target["id"]]
    assert await ids(ctx.fiscal, q="fevimtra") == _newest_first(fgr)
    assert await ids(ctx.fiscal, q="Otra") == _newest_first(
        [m for m in fgr if m["receiving_institution_id"] == OTHER_NGO]
    )
    assert await ids(ctx.fiscal, q="fevimtra 100%") == []  # % is a character, not a wildcard
    assert await ids(ctx.fiscal, receiving_institution_id=OTHER_NGO, q="fevimtra") == (
        _newest_first([m for m in fgr if m["receiving_institution_id"] == OTHER_NGO])
    )
    auditor = ctx.h("segob_auditor", institution_id=None)
    assert await ids(auditor, sending_institution_id=DIF) == _newest_first(
        [m for m in made if m["sending_institution_id"] == DIF]
    )
    # The DIF officer sees her own referrals only, whatever she searches for.
    dif = ctx.h("dif_officer", institution_id=DIF, sub="dif")
    assert await ids(dif, q=folio(target["id"])) == []
    # A date range: its first and last days included (a date is a whole UTC day).
    clock.freeze(START - timedelta(days=3))
    early = await ctx.referral(case_reference="FED/ANTIGUA/1/2026")
    clock.freeze(START + timedelta(days=3))
    late = await ctx.referral(case_reference="FED/RECIENTE/2/2026")
    window = {"created_from": START.date().isoformat(), "created_to": START.date().isoformat()}
    assert await ids(ctx.fiscal, **window) == _newest_first(fgr)
    assert await ids(ctx.fiscal, created_to=(START - timedelta(days=3)).date().isoformat()) == [
        early["id"]
    ]
    moment = (START + timedelta(days=1)).isoformat()
    assert await ids(ctx.fiscal, created_from=moment) == [late["id"]]
    assert await ids(ctx.fiscal, created_to=early["created_at"]) == [early["id"]]


async def test_the_archive_status_set_and_a_case_file_only_where_it_is_readable(ctx):
    await ctx.agreement(parties=(FGR, NGO))
    clock.freeze(START)
    refs = []
    for i in range(5):
        clock.advance(timedelta(minutes=1))
        refs.append(await ctx.sent_referral(case_reference=f"FED/ARCHIVO/{i}/2026"))
    declined, cancelled, accepted = refs[0], refs[1], refs[2]
    r = await ctx.act(declined["id"], "decline", ctx.coord, reason="Sin cupo para varones")
    assert r.status_code == 200, r.text
    assert (await ctx.act(cancelled["id"], "cancel", ctx.fiscal, reason="x")).status_code == 200
    assert (await ctx.act(accepted["id"], "accept", ctx.coord)).status_code == 200
    closed = {"status": "discharged,declined,cancelled,expired"}
    archive = await ctx.client.get("/api/v1/referrals", params=closed, headers=ctx.coord)
    assert [r["id"] for r in archive.json()] == [cancelled["id"], declined["id"]]
    repeated = await ctx.client.get(
        "/api/v1/referrals?status=declined&status=cancelled&status=expired", headers=ctx.coord
    )
    assert repeated.json() == archive.json()
    one = await ctx.client.get("/api/v1/referrals?status=declined", headers=ctx.coord)
    assert [r["id"] for r in one.json()] == [declined["id"]]
    reason = await ctx.client.get("/api/v1/referrals?q=varones", headers=ctx.coord)
    assert [r["id"] for r in reason.json()] == [declined["id"]]
    # The shelter finds by case file only what it may read: the accepted one, not the rest.
    for ref in refs:
        found = await ctx.client.get(
            "/api/v1/referrals", params={"q": ref["case_reference"]}, headers=ctx.coord
        )
        assert [r["id"] for r in found.json()] == ([ref["id"]] if ref is accepted else [])
        mine = await ctx.client.get(
            "/api/v1/referrals", params={"q": ref["case_reference"]}, headers=ctx.fiscal
        )
        assert [r["id"] for r in mine.json()] == [ref["id"]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"status": "perdida"}, "invalid_status"),
        ({"status": "declined,perdida"}, "invalid_status"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 501}, "validation_error"),
        ({"limit": "muchas"}, "validation_error"),
        ({"cursor": "no-es-un-cursor"}, "invalid_cursor"),
        ({"cursor": encode_cursor((1, 2))}, "invalid_cursor"),
        ({"cursor": encode_cursor(("2026-03-02T15:00:00", 7))}, "invalid_cursor"),
        ({"cursor": encode_cursor(("2026-03-02T15:00:00",))}, "invalid_cursor"),
        ({"cursor": encode_cursor(("0001-01-01T00:00:00+01:00", "x"))}, "invalid_cursor"),
        ({"cursor": "x" * 700}, "invalid_cursor"),
        ({"created_from": "2026-13-01"}, "invalid_date"),
        ({"created_to": "ayer"}, "invalid_date"),
        ({"created_to": "9999-12-31"}, "invalid_date"),
        ({"created_from": "2026-03-05", "created_to": "2026-03-01"}, "invalid_date_range"),
        ({"q": " ".join("abcdefghi")}, "invalid_search"),
        ({"q": "x" * 101}, "validation_error"),
        # PostgreSQL refuses a NUL in text: refused here first, never a 500
        ({"q": "trata\x00"}, "validation_error"),
        ({"status": "sent\x00"}, "validation_error"),
        ({"cursor": encode_cursor(("2026-03-02T15:00:00", "r\x00"))}, "invalid_cursor"),
    ],
)
async def test_bad_list_parameters_are_a_422_in_spanish_and_change_nothing(ctx, params, code):
    made = [await ctx.referral(case_reference=f"FED/{i}") for i in range(3)]
    before = await ctx.client.get("/api/v1/referrals", headers=ctx.fiscal)
    r = await ctx.client.get("/api/v1/referrals", params=params, headers=ctx.fiscal)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == code and body["detail"]
    assert NEXT_CURSOR_HEADER not in r.headers
    after = await ctx.client.get("/api/v1/referrals", headers=ctx.fiscal)
    assert after.json() == before.json()
    assert [x["id"] for x in after.json()] == _newest_first(made)


async def test_institutions_and_agreements_page_by_name_and_number(ctx):
    for _ in range(3):
        await ctx.agreement(parties=(FGR, NGO), sign=False)
    for path, key in (("/api/v1/institutions", "name"), ("/api/v1/agreements", "number")):
        whole = await ctx.client.get(path, headers=ctx.fiscal)
        assert NEXT_CURSOR_HEADER not in whole.headers
        pages = await _walk(ctx, ctx.fiscal, path, limit=2)
        walked = [row for page in pages for row in page]
        assert walked == whole.json()
        assert [row[key] for row in walked] == sorted(row[key] for row in walked)
        assert len(pages) == -(-len(walked) // 2) and len(walked) >= 3
        bad = await ctx.client.get(
            path, params={"cursor": encode_cursor((1, 2))}, headers=ctx.fiscal
        )
        assert bad.status_code == 422 and bad.json()["error"] == "invalid_cursor"

"""Lists that scale (issue 19): "Mis canalizaciones" and the shelter's archive search and page
through the referral service, so a referral older than any first page is found."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest

from canaliza.demo import CASA_MERCEDES, FGR
from frontend.i18n import TIMEZONE
from frontend.lists import PAGE_SIZE
from referral.catalogue import folio
from referral.database import db as referral_db
from referral.models import Referral
from tests.conftest import running
from tests.frontend.conftest import sign_in, small_world

pytestmark = pytest.mark.slow

# More than the 200 the list API answered before paging, so the oldest was out of reach.
COUNT = 210
CLOSED = ("discharged", "declined", "cancelled", "expired")


def _case(i: int) -> str:
    return f"FED/FEVIMTRA/CDMX/{i:07d}/2025"


def _past_referrals(facility_id: str) -> list[str]:
    """FGR's referrals to Casa de las Mercedes, one a day back from yesterday, every one
    closed (the archive shows them all); their ids, newest first."""
    now = datetime.now(UTC).replace(microsecond=0)
    ids = []
    with referral_db.unit_of_work() as session:
        for i in range(COUNT):
            at = now - timedelta(days=1 + i)
            status = CLOSED[i % len(CLOSED)]
            row = Referral(
                sending_institution_id=FGR.id,
                receiving_institution_id=CASA_MERCEDES.id,
                facility_id=facility_id,
                state="09",
                urgency="normal",
                status=status,
                case_reference=_case(i),
                decline_reason="Sin camas libres esa semana" if status == "declined" else None,
                outcome="reintegrated_origin" if status == "discharged" else None,
                created_by="fiscal",
                created_at=at,
                updated_at=at,
                sent_at=at,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def _rows(html: str) -> list[str]:
    return re.findall(r'<tr data-referral-id="([^"]+)"', html)


def _older(html: str) -> str | None:
    found = re.search(r'<a class="button" rel="next" href="([^"]+)">Más antiguas</a>', html)
    return unescape(found.group(1)) if found else None


async def _walk(client: httpx.AsyncClient, url: str) -> list[list[str]]:
    """The rows of every page, following "Más antiguas"; a later page links to the first."""
    pages: list[list[str]] = []
    next_url: str | None = url
    while next_url:
        page = await client.get(next_url)
        assert page.status_code == 200, page.text
        assert ("Más recientes" in page.text) == bool(pages)
        pages.append(_rows(page.text))
        next_url = _older(page.text)
    return pages


async def test_an_old_referral_is_found_and_reached_from_my_referrals(demo_app):
    async with running(demo_app) as client:
        world = await small_world(client)
        ids = _past_referrals(world["facility_id"])
        oldest = ids[-1]
        await sign_in(client, "fiscal")

        first = await client.get("/canalizaciones")
        assert first.status_code == 200, first.text
        assert _rows(first.text) == ids[:PAGE_SIZE] and oldest not in first.text
        assert "en esta página; las más recientes primero" in first.text
        # "Más antiguas", page after page, shows every referral once, newest first.
        pages = await _walk(client, "/canalizaciones")
        assert [len(p) for p in pages] == [PAGE_SIZE] * (COUNT // PAGE_SIZE) + [COUNT % PAGE_SIZE]
        assert [i for p in pages for i in p] == ids

        # Its case file, as the prosecutor typed it, or its folio: one row, on the first page.
        for search in (_case(COUNT - 1), folio(oldest).lower()):
            found = await client.get("/canalizaciones", params={"q": search})
            assert _rows(found.text) == [oldest], search
            assert _case(COUNT - 1) in found.text and folio(oldest) in found.text
            assert "1 canalización" in found.text
        # A day range in Mexico City time, both days included.
        day = (datetime.now(UTC) - timedelta(days=COUNT)).astimezone(TIMEZONE).date()
        dated = await client.get(
            "/canalizaciones", params={"desde": day.isoformat(), "hasta": day.isoformat()}
        )
        assert _rows(dated.text) == [oldest]
        # A cursor the service never made gives the first page, not an error.
        junk = await client.get("/canalizaciones", params={"siguiente": "bm8tY3Vyc29y"})
        assert junk.status_code == 200 and _rows(junk.text) == ids[:PAGE_SIZE]


async def test_the_archive_finds_an_old_closed_referral_by_folio_and_status(demo_app):
    async with running(demo_app) as client:
        world = await small_world(client)
        ids = _past_referrals(world["facility_id"])
        await sign_in(client, "coordinadora")

        first = await client.get("/refugio/archivo")
        assert _rows(first.text) == ids[:PAGE_SIZE]
        oldest = ids[-1]
        found = await client.get("/refugio/archivo", params={"q": folio(oldest)})
        assert _rows(found.text) == [oldest]
        # the status tabs keep the search (and a day range)
        assert f'href="/refugio/archivo?estado=declined&amp;q={folio(oldest)}"' in found.text
        # one status of the archive, still paged by the service
        wanted = CLOSED[(COUNT - 1) % len(CLOSED)]
        only = await _walk(client, f"/refugio/archivo?estado={wanted}")
        expected = [i for n, i in enumerate(ids) if CLOSED[n % len(CLOSED)] == wanted]
        assert [i for p in only for i in p] == expected
        # the decline reason and the sender's name are searched by the service
        declined = await _walk(client, "/refugio/archivo?q=fevimtra+camas")
        assert [i for p in declined for i in p] == [
            i for n, i in enumerate(ids) if CLOSED[n % len(CLOSED)] == "declined"
        ]

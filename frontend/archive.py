"""The coordinator's archive: every referral her institution received, searchable.

GET  /refugio/archivo     discharged, declined, cancelled and expired referrals (or all),
                          searched by folio, institution or reason and by date, newest
                          first, older ones page after page

The inbox (``/refugio/canalizaciones``) shows what needs doing now; nothing that left it is
lost: it is here. The referral service searches and pages (ADR 0026), so the oldest
referral is found as well as last week's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response

from frontend import paths
from frontend.dependencies import FrontendRoute
from frontend.lists import CursorPage, api_page, day_of, day_range, query_of
from frontend.prosecutor import STATUSES
from frontend.shelter import CoordinatorPage, facility_list

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

CLOSED = ("discharged", "declined", "cancelled", "expired")
EVERY = "todas"  # the "estado" that shows every referral, open ones too


@router.get("/refugio/archivo")
async def archive(
    page: CoordinatorPage,
    estado: str = "",
    q: str = "",
    desde: str = "",
    hasta: str = "",
    siguiente: str | None = None,
) -> Response:
    institution = page.browser.row.institution_id
    status = estado if estado in CLOSED or estado == EVERY else ""
    query = query_of(q)
    first, last = day_of(desde), day_of(hasta)
    days = {"desde": first.isoformat() if first else "", "hasta": last.isoformat() if last else ""}
    filters = {"estado": status, "q": query, **days}
    if institution:
        wanted = status if status in CLOSED else "" if status == EVERY else ",".join(CLOSED)
        params = {"receiving_institution_id": institution, "status": wanted, "q": query}
        listing = await api_page(
            page.api,
            "referral",
            "/api/v1/referrals",
            params={k: v for k, v in {**params, **day_range(first, last)}.items() if v},
            cursor=siguiente,
            screen="/refugio/archivo",
            filters=filters,
        )
    else:  # an account of no institution received nothing
        listing = CursorPage([], "/refugio/archivo", None, False)
    names = await paths.institution_names(page)
    facilities = {f["id"]: f["name"] for f in await facility_list(page)}
    return page.render(
        "shelter/archive.html",
        cursor_page=listing,
        query=query,
        days=days,
        chosen=status,
        closed=CLOSED,
        every=EVERY,
        kept=urlencode({k: v for k, v in filters.items() if v and k != "estado"}),
        statuses=STATUSES,
        names=names,
        facilities=facilities,
    )

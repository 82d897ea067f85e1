"""The coordinator's archive: every referral her institution received, searchable.

GET  /refugio/archivo     discharged, declined, cancelled and expired referrals (or all),
                          searched by institution, facility, status or date, page by page

The inbox (``/refugio/canalizaciones``) shows what needs doing now; nothing that left it is
lost: it is here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from frontend import paths
from frontend.dependencies import FrontendRoute
from frontend.lists import matching, paginate, query_of
from frontend.prosecutor import STATUSES, status_label
from frontend.shelter import CoordinatorPage, facility_list

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

CLOSED = ("discharged", "declined", "cancelled", "expired")
EVERY = "todas"  # the "estado" that shows every referral, open ones too


@router.get("/refugio/archivo")
async def archive(
    page: CoordinatorPage, estado: str = "", q: str = "", pagina: str = "1"
) -> Response:
    t = page.t
    institution = page.browser.row.institution_id
    status = estado if estado in CLOSED or estado == EVERY else ""
    query = query_of(q)
    names = await paths.institution_names(page)
    facilities = {f["id"]: f["name"] for f in await facility_list(page)}
    received = [
        r
        for r in await page.api.get("referral", "/api/v1/referrals")
        if r["receiving_institution_id"] == institution
        and (
            r["status"] == status if status in CLOSED else status == EVERY or r["status"] in CLOSED
        )
    ]
    received.sort(key=lambda r: r.get("updated_at") or r["created_at"], reverse=True)

    def text_of(r: dict[str, Any]) -> list[str]:
        return [
            names.get(r["sending_institution_id"], ""),
            facilities.get(r["facility_id"], ""),
            status_label(t, r["status"]),
            t.datetime(r["created_at"]),
            r.get("decline_reason") or "",
        ]

    found = matching(received, query, text_of)
    paged = paginate(found, pagina, path="/refugio/archivo", filters={"estado": status, "q": query})
    return page.render(
        "shelter/archive.html",
        paged=paged,
        query=query,
        chosen=status,
        closed=CLOSED,
        every=EVERY,
        statuses=STATUSES,
        names=names,
        facilities=facilities,
    )

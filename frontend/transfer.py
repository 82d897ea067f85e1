"""After acceptance, and no dead ends: the prosecutor's and the coordinator's next steps.

GET  /canalizaciones/apartados                 her institution's active holds: resume, release
GET  /canalizaciones/{id}/domicilio            the facility's address, contact and arrival
                                               instructions (each look audited)
POST /canalizaciones/{id}/traslado             the transfer starts, with the expected arrival
GET  /canalizaciones/{id}/oficio.pdf           the oficio de canalización (PDF)
POST /canalizaciones/{id}/otro-lugar           search again for the same group
GET  /refugio/canalizaciones/{id}/oficio.pdf   the oficio, for the receiving shelter
POST /refugio/instalaciones/{id}/llegada       the facility's contact and arrival instructions

Its router is included before the prosecutor's, so that ``/canalizaciones/apartados`` is
not read as a referral id.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_, TIMEZONE
from frontend.prosecutor import (
    ProsecutorPage,
    choices,
    clean_id,
    detail_values,
    held_from_capacity,
)
from frontend.shelter import CoordinatorPage
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

# Who may open the oficio of a referral her institution sends.
SenderPage = Annotated[
    Page,
    Depends(
        require_role(
            UserRole.PROSECUTOR,
            UserRole.DIF_OFFICER,
            UserRole.INM_OFFICER,
            UserRole.CEAV_OFFICER,
            UserRole.PLATFORM_ADMIN,
        )
    ),
]
DISCLOSED = ("accepted", "in_transit", "admitted", "discharged")
# The statuses after which the group needs another place.
DEAD_ENDS = ("declined", "expired", "cancelled")
LOCAL_INPUT = "%Y-%m-%dT%H:%M"
OPEN = ("draft", "sent", "accepted", "in_transit")


def expected_arrival(value: str) -> datetime | None:
    """A ``datetime-local`` value, read as Mexico City time (None when unreadable)."""
    try:
        local = datetime.strptime(value.strip(), LOCAL_INPUT)
    except ValueError:
        return None
    return local.replace(tzinfo=TIMEZONE)


# --- her holds ---------------------------------------------------------------------------


@router.get("/canalizaciones/apartados")
async def hold_list(page: ProsecutorPage) -> Response:
    holds, referrals = await page.api.gather(
        page.api.get("capacity", "/api/v1/holds"), page.api.get("referral", "/api/v1/referrals")
    )
    # A hold a referral already travels on is that referral's: shown, not resumable.
    used = {r["hold_id"]: r["id"] for r in referrals if r.get("hold_id") and r["status"] in OPEN}
    found = await page.api.gather(*(held_from_capacity(page, h) for h in holds))
    now = datetime.now(UTC)
    rows = []
    for hold, held in zip(holds, found, strict=True):
        expires = datetime.fromisoformat(hold["expires_at"].replace("Z", "+00:00"))
        rows.append(
            {
                "hold": hold,
                "held": held,
                "beds": sum(a["beds"] for a in hold["allocations"]),
                "minutes_left": max(0, int((expires - now).total_seconds() // 60)),
                "referral_id": used.get(hold["id"]),
            }
        )
    return page.render("prosecutor/holds.html", rows=rows, **choices(page))


# --- after acceptance ----------------------------------------------------------------------


@router.get("/canalizaciones/{referral_id}/domicilio")
async def show_address(page: ProsecutorPage, referral_id: str) -> Response:
    rid = clean_id(referral_id)
    values = await detail_values(page, rid)
    values["address"] = await page.api.get("referral", f"/api/v1/referrals/{rid}/facility-address")
    return page.render("prosecutor/detail.html", **values)


@router.post("/canalizaciones/{referral_id}/traslado")
async def start_transfer(
    page: ProsecutorPage,
    referral_id: str,
    arrival: Annotated[str, Form(max_length=20)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    rid = clean_id(referral_id)
    at = expected_arrival(arrival)
    if at is None:
        values = await detail_values(page, rid)
        problems = [N_("Give the expected arrival as a date and time.")]
        return page.render("prosecutor/detail.html", status=422, problems=problems, **values)
    headers = {"If-Match": f'"{version}"'} if version.isdigit() else {}
    try:
        await page.api.post(
            "referral",
            f"/api/v1/referrals/{rid}/in_transit",
            json={"expected_arrival_at": at.isoformat()},
            headers=headers,
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        values = await detail_values(page, rid)
        problems = [error_message(page.t, exc)]
        return page.render("prosecutor/detail.html", status=422, problems=problems, **values)
    return page.redirect(f"/canalizaciones/{rid}?aviso=in_transit")


def _oficio(page: Page, referral_id: str) -> Coroutine[Any, Any, Response]:
    path = f"/api/v1/referrals/{clean_id(referral_id)}/oficio"
    return page.download("referral", path, {}, "oficio.pdf")


@router.get("/canalizaciones/{referral_id}/oficio.pdf")
async def sender_oficio(page: SenderPage, referral_id: str) -> Response:
    return await _oficio(page, referral_id)


@router.get("/refugio/canalizaciones/{referral_id}/oficio.pdf")
async def receiver_oficio(page: CoordinatorPage, referral_id: str) -> Response:
    return await _oficio(page, referral_id)


# --- no dead ends ----------------------------------------------------------------------------


def search_of(referral: dict[str, Any]) -> dict[str, Any]:
    """The search form's values for a referral's group (its state, no needs)."""
    people = [
        {"sex": p.get("sex"), "age": p.get("age"), "role": p.get("role") or "victim"}
        for p in referral.get("people") or []
    ]
    return {"people": people, "needs": {}, "state": referral.get("state")}


# What the sender recorded of each person, carried to the group's next referral: the same
# person key (the statistics count her once, ADR 0019) and the variables, shown again.
CARRIED = ("person_key", "nationality", "state_of_origin", "vulnerable_groups", "offences",
           "languages")  # fmt: skip


def recorded_people(referral: dict[str, Any]) -> list[dict[str, Any]]:
    """Each person's key and recorded variables, in the referral's order."""
    return [{k: p.get(k) for k in CARRIED} for p in referral.get("people") or []]


@router.post("/canalizaciones/{referral_id}/otro-lugar")
async def search_again(page: ProsecutorPage, referral_id: str) -> Response:
    referral = await page.api.get("referral", f"/api/v1/referrals/{clean_id(referral_id)}")
    await page.save_draft(
        {
            "search": search_of(referral),
            "again_from": referral["id"],
            "again": recorded_people(referral),
        }
    )
    return page.redirect("/canalizaciones/nueva?aviso=again")


# --- the shelter's arrival instructions --------------------------------------------------------


@router.post("/refugio/instalaciones/{facility_id}/llegada")
async def set_arrival(
    page: CoordinatorPage,
    facility_id: str,
    contact: Annotated[str, Form(max_length=300)] = "",
    instructions: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    fid = clean_id(facility_id)
    body = {
        "contact": contact.strip() or None,
        "arrival_instructions": instructions.strip() or None,
    }
    await page.api.request("capacity", "PUT", f"/api/v1/facilities/{fid}/arrival", json=body)
    return page.redirect(f"/refugio?aviso=arrival#facility-{fid}")

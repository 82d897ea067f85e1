"""The operator's side of SEGOB registration: status, observations, submit (again).

GET  /refugio/registro                         her institution's facilities and their registration
POST /refugio/registro/{facility}/solicitar    submit a facility (optional note), CSRF checked

For the shelter coordinator and the institution admin of the operating institution; the
capacity service checks the scope again (403 ``forbidden_scope``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_
from frontend.shelter import REGISTRATION, facility_list
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

OPERATOR_ROLES = (UserRole.SHELTER_COORDINATOR, UserRole.INSTITUTION_ADMIN)
OperatorPage = Annotated[Page, Depends(require_role(*OPERATOR_ROLES))]

SUBMITTABLE = frozenset({"not_submitted", "returned"})
NOTICES = {
    "submitted": N_(
        "Your request was sent to SEGOB. The facility now shows as submitted, awaiting review."
    ),
}


def last_review(registration: dict[str, Any]) -> dict[str, Any] | None:
    """The latest return by SEGOB (observations and checklist answers), when it is returned."""
    if registration.get("registration_status") != "returned":
        return None
    returns = [h for h in registration.get("history", []) if h.get("action") == "returned"]
    return returns[-1] if returns else None


async def _page(
    page: Page, *, notice: str | None = None, problem: str | None = None, status: int = 200,
    problem_facility: str | None = None, note: str = "",
) -> Response:  # fmt: skip
    facilities = await facility_list(page)
    facilities.sort(key=lambda f: f["name"])
    checklist, *registrations = await page.api.gather(
        page.api.get("capacity", "/api/v1/registration/checklist"),
        *(
            page.api.get("capacity", f"/api/v1/facilities/{f['id']}/registration")
            for f in facilities
        ),
    )
    labels = {c["item"]: c["label"] for c in checklist}
    for facility, registration in zip(facilities, registrations, strict=True):
        facility["registration"] = registration
        facility["review"] = last_review(registration)
        facility["submittable"] = registration["registration_status"] in SUBMITTABLE
    return page.render(
        "shelter/registration.html",
        status=status,
        facilities=facilities,
        labels=labels,
        registration_labels=REGISTRATION,
        notice=notice,
        problem=problem,
        problem_facility=problem_facility,
        note=note,
    )


@router.get("/refugio/registro")
async def registration(page: OperatorPage, aviso: str | None = None) -> Response:
    notice = page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None
    return await _page(page, notice=notice)


@router.post("/refugio/registro/{facility_id}/solicitar")
async def submit(
    page: OperatorPage,
    facility_id: str,
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    fid = facility_id[:64]
    text = note.strip()
    if text and len(text) < 3:
        return await _page(
            page,
            problem=page.t.gettext("The note needs at least 3 characters, or leave it empty."),
            problem_facility=fid,
            note=note,
            status=422,
        )
    body = {"note": text} if text else {}
    try:
        await page.api.post("capacity", f"/api/v1/facilities/{fid}/registration/submit", json=body)
    except ApiError as exc:
        if exc.status not in (403, 404, 409, 422):
            raise
        return await _page(
            page,
            problem=error_message(page.t, exc),
            problem_facility=fid,
            note=note,
            status=exc.status,
        )
    return page.redirect(f"/refugio/registro?aviso=submitted#facility-{fid}")

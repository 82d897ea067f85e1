"""After placement (ADR 0022): the stay, its extensions, follow-ups and services provided
(the shelter coordinator), and each foreign person's migration route (the INM officer).

GET  /refugio/canalizaciones/{id}/estancia                      stay counter, extensions,
                                                                follow-ups, services, routes
POST /refugio/canalizaciones/{id}/estancia/prorroga             extend (reason, approver)
POST /refugio/canalizaciones/{id}/estancia/servicios            a service given to a person
POST /refugio/canalizaciones/{id}/estancia/seguimientos         plan a follow-up contact
POST /refugio/canalizaciones/{id}/estancia/seguimientos/calendario  the standard schedule
POST /refugio/canalizaciones/{id}/estancia/seguimientos/{f}     its result
GET  /inm/canalizaciones                                        referrals her office attends
GET  /inm/canalizaciones/{id}                                   each foreign person's route
POST /inm/canalizaciones/{id}/personas/{person}                 record a person's route
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_
from frontend.prosecutor import ROLES, SEXES, STATUSES
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

CoordinatorPage = Annotated[Page, Depends(require_role(UserRole.SHELTER_COORDINATOR))]
InmPage = Annotated[Page, Depends(require_role(UserRole.INM_OFFICER))]

ALERTS = {
    "none": N_("Within the maximum stay"),
    "approaching": N_("The maximum stay is near"),
    "reached": N_("The maximum stay is reached today"),
    "exceeded": N_("Past the maximum stay without an extension"),
}
EXTENSION_REASONS = {
    "risk": N_("The risk persists"),
    "physical_instability": N_("Physical instability"),
    "psychological_instability": N_("Psychological instability"),
    "other": N_("Other reason"),
}
FOLLOW_UP_RESULTS = {
    "stable": N_("Reached, stable"),
    "needs_support": N_("Reached, needs support"),
    "not_reached": N_("Not reached"),
    "declined": N_("Does not want follow-up"),
}
SERVICES = {
    "legal": N_("Legal advice"),
    "psychological": N_("Psychological care"),
    "medical": N_("Medical care"),
    "education": N_("Education"),
    "job_training": N_("Job training"),
}
MIGRATION_ROUTES = {
    "humanitarian_regularisation": N_("Regularisation for humanitarian reasons"),
    "complementary_protection": N_("Complementary protection"),
    "asylum": N_("Refugee status (COMAR, with UNHCR)"),
    "assisted_return": N_("Assisted return"),
}
ROUTE_STATUSES = {
    "requested": N_("Requested"),
    "in_process": N_("In process"),
    "granted": N_("Granted"),
    "denied": N_("Denied"),
    "completed": N_("Completed"),
}
NOTICES = {
    "extended": N_("Extension recorded."),
    "service": N_("Service recorded."),
    "planned": N_("Follow-up contact planned."),
    "followed": N_("Follow-up result recorded."),
    "route": N_("Migration route recorded."),
}
FOLLOW_UP_DAYS = 30  # the first contact's suggested day after discharge (002:384)


def _notice(page: Page, aviso: str | None) -> str | None:
    return page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None


async def stay_values(page: Page, referral_id: str) -> dict[str, Any]:
    """A referral of her institution with its stay (and its foreign people's routes)."""
    rid = referral_id[:36]
    referral, stay, routes = await page.api.gather(
        page.api.get("referral", f"/api/v1/referrals/{rid}"),
        page.api.get("referral", f"/api/v1/referrals/{rid}/stay"),
        page.api.get("referral", f"/api/v1/referrals/{rid}/migration-routes"),
    )
    if referral["receiving_institution_id"] != page.browser.row.institution_id:
        raise ApiError(403, "forbidden", "")
    discharged = (stay.get("discharged_at") or "")[:10]
    suggested = (
        date.fromisoformat(discharged) + timedelta(days=FOLLOW_UP_DAYS) if discharged else None
    )
    return {
        "referral": referral,
        "stay": stay,
        "routes": routes,
        "alerts": ALERTS,
        "reasons": EXTENSION_REASONS,
        "results": FOLLOW_UP_RESULTS,
        "services": SERVICES,
        "route_labels": MIGRATION_ROUTES,
        "route_statuses": ROUTE_STATUSES,
        "statuses": STATUSES,
        "sexes": SEXES,
        "roles": ROLES,
        "today": date.today().isoformat(),
        "suggested_due": suggested.isoformat() if suggested else date.today().isoformat(),
    }


async def _stay_page(
    page: Page,
    referral_id: str,
    *,
    notice: str | None = None,
    problems: list[str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    values = await stay_values(page, referral_id)
    return page.render(
        "aftercare/stay.html",
        status=status,
        notice=notice,
        problems=problems or [],
        form=form or {},
        **values,
    )


async def _refused(
    page: Page, referral_id: str, problem: str, form: dict[str, str] | None = None
) -> Response:
    """The stay screen again with what was missing (422), before any call."""
    return await _stay_page(page, referral_id, problems=[problem], form=form, status=422)


@router.get("/refugio/canalizaciones/{referral_id}/estancia")
async def stay(page: CoordinatorPage, referral_id: str, aviso: str | None = None) -> Response:
    return await _stay_page(page, referral_id, notice=_notice(page, aviso))


async def _post_or_problem(
    page: Page, referral_id: str, path: str, body: dict[str, Any], aviso: str, anchor: str
) -> Response:
    """Write through the API; a refusal (409/422, a Spanish sentence naming the field) is
    shown on the same page with what was typed."""
    rid = referral_id[:36]
    try:
        await page.api.post("referral", f"/api/v1/referrals/{rid}{path}", json=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        form = {k: str(v) for k, v in body.items() if v is not None}
        return await _stay_page(
            page, rid, problems=[error_message(page.t, exc)], form=form, status=exc.status
        )
    return page.redirect(f"/refugio/canalizaciones/{rid}/estancia?aviso={aviso}#{anchor}")


@router.post("/refugio/canalizaciones/{referral_id}/estancia/prorroga")
async def extend(
    page: CoordinatorPage,
    referral_id: str,
    days: Annotated[str, Form(max_length=4)] = "",
    reason: Annotated[str, Form(max_length=40)] = "",
    detail: Annotated[str, Form(max_length=500)] = "",
    approved_by: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    body: dict[str, Any] = {
        "days": int(days) if days.isdigit() else 0,
        "reason": reason if reason in EXTENSION_REASONS else None,
        "detail": detail.strip() or None,
        "approved_by": approved_by.strip() or None,
    }
    if body["days"] < 1:
        return await _refused(
            page,
            referral_id,
            N_("Write how many days the stay is extended."),
            {k: str(v) for k, v in body.items() if v},
        )
    return await _post_or_problem(
        page, referral_id, "/stay/extensions", body, "extended", "extensions"
    )


@router.post("/refugio/canalizaciones/{referral_id}/estancia/servicios")
async def provide_service(
    page: CoordinatorPage,
    referral_id: str,
    person_id: Annotated[str, Form(max_length=36)] = "",
    service: Annotated[str, Form(max_length=20)] = "",
    provided_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if service not in SERVICES or not provided_on:
        return await _refused(
            page, referral_id, N_("Choose the person, the service and the day it was provided.")
        )
    body = {"person_id": person_id, "service": service, "provided_on": provided_on}
    return await _post_or_problem(page, referral_id, "/stay/services", body, "service", "services")


@router.post("/refugio/canalizaciones/{referral_id}/estancia/seguimientos")
async def plan_follow_up(
    page: CoordinatorPage, referral_id: str, due_on: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    if not due_on:
        return await _refused(page, referral_id, N_("Choose the day of the contact."))
    return await _post_or_problem(
        page, referral_id, "/stay/follow-ups", {"due_on": due_on}, "planned", "follow-ups"
    )


@router.post("/refugio/canalizaciones/{referral_id}/estancia/seguimientos/calendario")
async def plan_schedule(page: CoordinatorPage, referral_id: str) -> Response:
    """The standard contacts: one, three and six months after discharge."""
    return await _post_or_problem(
        page, referral_id, "/stay/follow-ups/schedule", {}, "planned", "follow-ups"
    )


@router.post("/refugio/canalizaciones/{referral_id}/estancia/seguimientos/{follow_up_id}")
async def follow_up_result(
    page: CoordinatorPage,
    referral_id: str,
    follow_up_id: str,
    done_on: Annotated[str, Form(max_length=10)] = "",
    result: Annotated[str, Form(max_length=20)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if result not in FOLLOW_UP_RESULTS or not done_on:
        return await _refused(
            page, referral_id, N_("Choose the result and the day of the contact.")
        )
    body = {"done_on": done_on, "result": result, "note": note.strip() or None}
    return await _post_or_problem(
        page,
        referral_id,
        f"/stay/follow-ups/{follow_up_id[:18]}/result",
        body,
        "followed",
        "follow-ups",
    )


# --- the INM officer: each foreign person's migration route --------------------------------


def _attended_by(referral: dict[str, Any], institution_id: str | None) -> bool:
    return any(
        o["kind"] == "inm_migration_status" and o["institution_id"] == institution_id
        for o in referral.get("obligations") or []
    )


@router.get("/inm/canalizaciones")
async def inm_inbox(page: InmPage) -> Response:
    institution = page.browser.row.institution_id
    referrals = [
        r
        for r in await page.api.get("referral", "/api/v1/referrals")
        if _attended_by(r, institution)
    ]
    return page.render("aftercare/inm_inbox.html", referrals=referrals, statuses=STATUSES)


async def _routes_page(
    page: Page,
    referral_id: str,
    *,
    notice: str | None = None,
    problems: list[str] | None = None,
    failed: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    rid = referral_id[:36]
    referral, routes = await page.api.gather(
        page.api.get("referral", f"/api/v1/referrals/{rid}"),
        page.api.get("referral", f"/api/v1/referrals/{rid}/migration-routes"),
    )
    if not _attended_by(referral, page.browser.row.institution_id):
        raise ApiError(403, "forbidden", "")
    return page.render(
        "aftercare/inm_referral.html",
        status=status,
        referral=referral,
        routes=routes,
        route_labels=MIGRATION_ROUTES,
        route_statuses=ROUTE_STATUSES,
        statuses=STATUSES,
        notice=notice,
        problems=problems or [],
        failed=failed,
        form=form or {},
        today=date.today().isoformat(),
    )


@router.get("/inm/canalizaciones/{referral_id}")
async def inm_referral(page: InmPage, referral_id: str, aviso: str | None = None) -> Response:
    return await _routes_page(page, referral_id, notice=_notice(page, aviso))


@router.post("/inm/canalizaciones/{referral_id}/personas/{person_id}")
async def record_route(
    page: InmPage,
    referral_id: str,
    person_id: str,
    route: Annotated[str, Form(max_length=40)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    started_on: Annotated[str, Form(max_length=10)] = "",
    resolved_on: Annotated[str, Form(max_length=10)] = "",
    humanitarian_visa_number: Annotated[str, Form(max_length=40)] = "",
    consular_contact_consent: Annotated[str, Form(max_length=5)] = "",
    consular_contact_on: Annotated[str, Form(max_length=10)] = "",
    migration_station_days: Annotated[str, Form(max_length=5)] = "",
    return_country: Annotated[str, Form(max_length=3)] = "",
    risk_assessed_on: Annotated[str, Form(max_length=10)] = "",
    risk_summary: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    rid, pid = referral_id[:36], person_id[:36]
    form = {
        "route": route,
        "status": status,
        "started_on": started_on,
        "resolved_on": resolved_on,
        "humanitarian_visa_number": humanitarian_visa_number,
        "consular_contact_consent": consular_contact_consent,
        "consular_contact_on": consular_contact_on,
        "migration_station_days": migration_station_days,
        "return_country": return_country,
        "risk_assessed_on": risk_assessed_on,
        "risk_summary": risk_summary,
    }
    if route not in MIGRATION_ROUTES or status not in ROUTE_STATUSES or not started_on:
        return await _routes_page(
            page,
            rid,
            problems=[N_("Choose the route, its status and the day it started.")],
            failed=pid,
            form=form,
            status=422,
        )
    body: dict[str, Any] = {
        "route": route,
        "status": status,
        "started_on": started_on,
        "resolved_on": resolved_on or None,
        "humanitarian_visa_number": humanitarian_visa_number.strip() or None,
        "consular_contact_consent": {"yes": True, "no": False}.get(consular_contact_consent),
        "consular_contact_on": consular_contact_on or None,
        "migration_station_days": (
            int(migration_station_days) if migration_station_days.isdigit() else None
        ),
        "return_country": return_country.strip().upper() or None,
    }
    if risk_assessed_on or risk_summary.strip():
        body["risk_assessment"] = {"assessed_on": risk_assessed_on, "summary": risk_summary}
    try:
        await page.api.request(
            "referral", "PUT", f"/api/v1/referrals/{rid}/people/{pid}/migration-route", json=body
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _routes_page(
            page,
            rid,
            problems=[error_message(page.t, exc)],
            failed=pid,
            form=form,
            status=exc.status,
        )
    return page.redirect(f"/inm/canalizaciones/{rid}?aviso=route#person-{pid}")

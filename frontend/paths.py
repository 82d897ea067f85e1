"""Issue 17's paths in the web UI (ADR 0021): urgent placement without an agreement, the
detection source, a person's path across onward transfers, and the coordinator's screen to
send an admitted person to another place.

GET  /refugio/canalizaciones/{id}/otro-lugar          the same people: search another place
POST /refugio/canalizaciones/{id}/otro-lugar          the search (by state)
POST /refugio/canalizaciones/{id}/otro-lugar/enviar   hold the beds, create and send onward

The other screens include this module's templates (``templates/paths/``) and call its
helpers, so that their own handlers change by a line or two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_, STATES, TIMEZONE
from services.vocabulary import DetectionSource, UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

CoordinatorPage = Annotated[Page, Depends(require_role(UserRole.SHELTER_COORDINATOR))]

# How the victims were detected (the API's codes; "S.I." when not recorded).
DETECTION_SOURCES: dict[str, str] = {
    DetectionSource.HOTLINE: N_("Hotline or reporting e-mail"),
    DetectionSource.ANONYMOUS_REPORT: N_("Anonymous report"),
    DetectionSource.VICTIM_COMPLAINT: N_("Complaint by the victim"),
    DetectionSource.WITNESS_COMPLAINT: N_("Complaint by a witness"),
    DetectionSource.EX_OFFICIO: N_("Ex officio investigation"),
    DetectionSource.INSPECTION: N_("Inspection of establishments"),
    DetectionSource.OPERATION: N_("Operation"),
    DetectionSource.SELF_PRESENTATION: N_("The victim came forward"),
    DetectionSource.INSTITUTION_REFERRAL: N_("Referred by another institution"),
    DetectionSource.OTHER: N_("Other"),
}
SENT_ONWARD = "sent"


def placement_fields(
    form: Any, agreements: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """From a send form: the agreement chosen, or an urgent placement without one with its
    justification; and the detection source. ``(body fields, problems as message ids)``."""
    problems: list[str] = []
    fields: dict[str, Any] = {}
    source = str(form.get("detection_source") or "")
    if source in DETECTION_SOURCES:
        fields["detection_source"] = source
    if form.get("without_agreement") == "on":
        justification = str(form.get("justification") or "").strip()[:1000]
        if not justification:
            problems.append(N_("Write why this urgent placement cannot wait for an agreement."))
        fields.update(
            without_agreement=True,
            without_agreement_justification=justification,
            urgency="urgent",
        )
        return fields, problems
    chosen = str(form.get("agreement") or "")
    if chosen not in {a["id"] for a in agreements}:
        problems.append(N_("Choose the signed agreement this referral travels along."))
    else:
        fields["agreement_id"] = chosen
    return fields, problems


async def agreements_in_force(page: Page) -> list[dict[str, Any]]:
    """The signed agreements in force today to which her institution is a party."""
    own = page.browser.row.institution_id
    today = datetime.now(TIMEZONE).date().isoformat()
    return [
        a
        for a in await page.api.get("referral", "/api/v1/agreements")
        if a["status"] == "signed"
        and own in a["party_ids"]
        and str(a.get("valid_from") or "") <= today <= str(a.get("valid_to") or "9999")
    ]


EVERY_SEX = ("F", "M", "X")
ADULT_AGE = 18


def covers(agreement: dict[str, Any], people: list[dict[str, Any]], state: str | None) -> bool:
    """Whether an agreement's scope covers this group in this state, as the referral service
    decides when the referral is sent: every sex (a person of unrecorded sex needs all
    three), every age group (unknown age counts as a minor) and, if it names states, the
    facility's."""
    populations = agreement.get("populations") or {}
    sexes = {s for p in people for s in ((p["sex"],) if p.get("sex") else EVERY_SEX)}
    groups = {
        "adults" if p.get("age") is not None and p["age"] >= ADULT_AGE else "minors" for p in people
    }
    states = agreement.get("states") or []
    return (
        sexes <= set(populations.get("sexes") or [])
        and groups <= set(populations.get("age_groups") or [])
        and (not states or state in states)
    )


async def path_of(page: Page, referral_id: str) -> list[dict[str, Any]]:
    """The person's path through ``referral_id`` (empty when it cannot be read)."""
    try:
        steps = await page.api.get("referral", f"/api/v1/referrals/{referral_id[:36]}/path")
    except ApiError:
        return []
    return list(steps)


async def agreement_alerts(page: Page) -> list[dict[str, Any]]:
    """For an institution's admin: urgent placements along no agreement, to formalise one."""
    try:
        return list(await page.api.get("referral", "/api/v1/agreement-alerts"))
    except ApiError:
        return []


async def statistics_values(page: Page) -> dict[str, Any]:
    """For SEGOB's statistics screen: people by detection source, and urgent placements
    without an agreement by sender and receiver (empty when a report cannot be read)."""
    try:
        people, urgent = await page.api.gather(
            page.api.get("audit", "/api/v1/reports/people", params={"by": "detection_source"}),
            page.api.get(
                "audit",
                "/api/v1/reports/urgent-without-agreement",
                params={"by": "sending_institution_id,receiving_institution_id"},
            ),
        )
    except ApiError:
        return {"by_detection": [], "urgent_placements": [], "detection_sources": {}}
    return {
        "by_detection": people["rows"],
        "urgent_placements": urgent["rows"],
        "detection_sources": DETECTION_SOURCES,
        "names": await institution_names(page),
    }


# --- the coordinator sends an admitted person onward ----------------------------------------


async def institution_names(page: Page) -> dict[str, str]:
    """Every institution's name by id (empty when they cannot be read)."""
    try:
        institutions = await page.api.get("referral", "/api/v1/institutions")
    except ApiError:
        return {}
    return {i["id"]: i["name"] for i in institutions}


async def _onward_values(page: Page, referral_id: str) -> dict[str, Any]:
    rid = referral_id[:36]
    referral, usable, names, path = await page.api.gather(
        page.api.get("referral", f"/api/v1/referrals/{rid}"),
        agreements_in_force(page),
        institution_names(page),
        path_of(page, rid),
    )
    if referral["receiving_institution_id"] != page.browser.row.institution_id:
        raise ApiError(403, "forbidden", "")
    return {
        "referral": referral,
        "agreements": usable,
        "names": names,
        "path": path,
        "states": sorted(STATES, key=lambda code: page.t.state(code)),
        "detection_sources": DETECTION_SOURCES,
        "results": None,
        "state": "",
        "problems": [],
    }


def _search_people(referral: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"sex": p["sex"], "age": p.get("age"), "role": p["role"]} for p in referral["people"]]


async def _search(page: Page, values: dict[str, Any], state: str | None) -> None:
    body: dict[str, Any] = {"people": _search_people(values["referral"])}
    if state:
        body["state"] = state
    answer = await page.api.post("capacity", "/api/v1/availability/search", json=body)
    mine = page.browser.row.institution_id
    results = [r for r in answer["results"] if r["facility"]["operator_institution_id"] != mine]
    people = body["people"]
    for r in results:  # the agreement it would travel along, if any covers the people there
        operator = r["facility"]["operator_institution_id"]
        r["agreement"] = next(
            (
                a
                for a in values["agreements"]
                if operator in a["party_ids"] and covers(a, people, r["facility"].get("state"))
            ),
            None,
        )
    values["results"] = results
    values["state"] = state or ""


async def _hold_and_send(
    page: Page,
    previous_id: str,
    operator: str,
    facility_id: str,
    allocations: list[dict[str, Any]],
    fields: dict[str, Any],
) -> None:
    """Hold the beds, create the onward referral and send it; a refused referral gives its
    beds back."""
    hold = await page.api.post("capacity", "/api/v1/holds", json={"allocations": allocations})
    body: dict[str, Any] = {
        "sending_institution_id": page.browser.row.institution_id,
        "receiving_institution_id": operator,
        "facility_id": facility_id,
        "hold_id": hold["id"],
        "previous_referral_id": previous_id,
        "consent": {"given": True},
        "urgency": "urgent",
        **fields,
    }
    try:
        created = await page.api.post(
            "referral",
            "/api/v1/referrals",
            json=body,
            headers={"Idempotency-Key": f"onward-{hold['id']}"},
        )
    except ApiError:
        await page.api.delete("capacity", f"/api/v1/holds/{hold['id']}")
        raise
    if created["status"] == "draft":
        try:
            await page.api.post("referral", f"/api/v1/referrals/{created['id']}/send", json={})
        except ApiError:  # refused: no draft left behind holding beds
            await page.api.post(
                "referral",
                f"/api/v1/referrals/{created['id']}/cancel",
                json={"reason": "Envío rechazado"},
            )
            raise


@router.get("/refugio/canalizaciones/{referral_id}/otro-lugar")
async def onward_form(
    page: CoordinatorPage, referral_id: str, aviso: str | None = None
) -> Response:
    values = await _onward_values(page, referral_id)
    notice = page.t.gettext(N_("The referral to the other place was sent.")) if aviso else None
    return page.render("paths/onward.html", notice=notice, **values)


@router.post("/refugio/canalizaciones/{referral_id}/otro-lugar")
async def onward_search(page: CoordinatorPage, referral_id: str, request: Request) -> Response:
    form = await request.form()
    values = await _onward_values(page, referral_id)
    state = str(form.get("state") or "")
    await _search(page, values, state if state in STATES else None)
    return page.render("paths/onward.html", **values)


@router.post("/refugio/canalizaciones/{referral_id}/otro-lugar/enviar")
async def onward_send(page: CoordinatorPage, referral_id: str, request: Request) -> Response:
    form = await request.form()
    values = await _onward_values(page, referral_id)
    referral = values["referral"]
    operator = str(form.get("operator_institution_id") or "")[:36]
    facility_id = str(form.get("facility_id") or "")[:36]
    usable = [a for a in values["agreements"] if operator in a["party_ids"]]
    fields, problems = placement_fields(form, usable)
    if form.get("consent") != "on":
        problems.append(N_("Record the informed consent of the people before sending."))
    allocations = []
    for value in form.getlist("allocation"):
        pool_id, _, beds = str(value).partition(":")
        if pool_id and beds.isdigit():
            allocations.append({"pool_id": pool_id[:36], "beds": int(beds)})
    if not (operator and facility_id and allocations):
        problems.append(N_("Choose one of the places found."))
    if not problems:
        try:
            await _hold_and_send(page, referral["id"], operator, facility_id, allocations, fields)
        except ApiError as exc:
            if exc.status >= 500:
                raise
            problems = [error_message(page.t, exc)]
        else:
            return page.redirect(
                f"/refugio/canalizaciones/{referral['id']}/otro-lugar?aviso={SENT_ONWARD}"
            )
    state = str(form.get("state") or "")
    await _search(page, values, state if state in STATES else None)
    values["problems"] = problems
    return page.render("paths/onward.html", status=422, **values)

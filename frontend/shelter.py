"""The shelter coordinator's screens: occupancy, capacity confirmation, incoming referrals.

GET  /refugio                                 her facilities' pools, +/- occupancy, confirm
POST /refugio/cupos/{pool}/movimiento         one bed in or out (reason required, version checked)
POST /refugio/cupos/{pool}/confirmar          confirm one pool's counts
POST /refugio/confirmar                       confirm every pool of her facilities
GET  /refugio/canalizaciones                  incoming referrals with their answer deadline
GET  /refugio/canalizaciones/{id}             one referral: accept, decline, admit, discharge
POST /refugio/canalizaciones/{id}/aceptar     accept (If-Match: the version shown)
GET|POST /refugio/canalizaciones/{id}/rechazar    decline, confirmed, reason required
POST /refugio/canalizaciones/{id}/ingreso     admission (the held beds become occupied)
GET|POST /refugio/canalizaciones/{id}/egreso  discharge with its outcome, confirmed
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import Response

from frontend import paths
from frontend.aftercare import ALERTS as STAY_ALERTS
from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_, TIMEZONE
from frontend.prosecutor import (
    AGE_BANDS,
    NO_INFORMATION,
    ROLES,
    SEXES,
    STATUSES,
    VULNERABLE_GROUPS,
)
from services.vocabulary import CNDH_AGE_BANDS, Outcome, UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

COORDINATOR_ROLES = (UserRole.SHELTER_COORDINATOR,)
CoordinatorPage = Annotated[Page, Depends(require_role(*COORDINATOR_ROLES))]

MOVES = {"admit": N_("Admission"), "discharge": N_("Discharge")}
OUTCOMES: dict[str, str] = {
    Outcome.REINTEGRATED_ORIGIN: N_("Reintegrated in her place of origin"),
    Outcome.REINTEGRATED_ELSEWHERE: N_("Reintegrated elsewhere"),
    Outcome.TRANSFERRED_ONWARD: N_("Transferred to another place"),
    Outcome.LEFT_VOLUNTARILY: N_("Left voluntarily"),
    Outcome.ASSISTED_RETURN: N_("Assisted return to her country"),
    Outcome.OTHER: N_("Other"),
}
NOTICES = {
    "admit": N_("One more bed is now occupied."),
    "discharge": N_("One bed was freed."),
    "confirmed": N_("Capacity confirmed. Thank you: prosecutors now see it as current."),
    "accepted": N_("You accepted the referral. The prosecutor can now arrange the transfer."),
    "declined": N_("You declined the referral. The prosecutor will look for another place."),
    "admitted": N_("Admission recorded: the held beds are now occupied."),
    "discharged": N_("Discharge recorded with its outcome."),
    "arrival": N_("Contact and arrival instructions saved. Prosecutors see them once you accept."),
}
INBOX_STATUSES = ("sent", "accepted", "in_transit", "admitted")
STAY_STATUSES = ("admitted", "discharged")
REGISTRATION = {  # SEGOB registration of a facility (shelter and oversight screens)
    "not_submitted": N_("Not submitted"),
    "submitted": N_("Submitted, awaiting review"),
    "returned": N_("Returned with observations"),
    "registered": N_("Registered"),
}


def _notice(page: Page, aviso: str | None) -> str | None:
    return page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def confirmed_today(pool: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether the pool's counts were confirmed today, Mexico City time."""
    at = _parse(pool.get("last_confirmed_at"))
    if at is None:
        return False
    today = (now or datetime.now(UTC)).astimezone(TIMEZONE).date()
    return at.astimezone(TIMEZONE).date() == today


async def facility_list(page: Page) -> list[dict[str, Any]]:
    institution = page.browser.row.institution_id
    if not institution:
        return []
    return await page.api.get_every(
        "capacity",
        "/api/v1/facilities",
        items="items",
        params={"operator_institution_id": institution, "limit": 100},
    )


async def _her_facilities(page: Page) -> list[dict[str, Any]]:
    """Her institution's facilities, each with its pools."""
    facilities = await facility_list(page)
    pools = await page.api.gather(
        *(
            page.api.get_every(
                "capacity", f"/api/v1/facilities/{f['id']}/pools", params={"limit": 500}
            )
            for f in facilities
        )
    )
    for facility, its_pools in zip(facilities, pools, strict=True):
        facility["pools"] = its_pools
    facilities.sort(key=lambda f: f["name"])
    return facilities


async def _pools_page(
    page: Page,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
    moved_pool: str | None = None,
) -> Response:
    facilities = await _her_facilities(page)
    unconfirmed = [
        p
        for f in facilities
        if f["status"] == "active"
        for p in f["pools"]
        if not confirmed_today(p)
    ]
    return page.render(
        "shelter/pools.html",
        status=status,
        sexes=SEXES,
        age_bands=ADMISSION_AGE_BANDS,
        no_information=NO_INFORMATION,
        facilities=facilities,
        unconfirmed=len(unconfirmed),
        confirmed_today=confirmed_today,
        registration_labels=REGISTRATION,
        # After +1/−1 the page opens at the pool: the message is shown there, in view.
        notice=None if moved_pool else notice,
        pool_notice=notice if moved_pool else None,
        moved_pool=moved_pool,
        problem=problem,
    )


@router.get("/refugio")
async def pools(
    page: CoordinatorPage, aviso: str | None = None, cupo: str | None = None
) -> Response:
    moved = cupo[:36] if cupo else None
    return await _pools_page(page, notice=_notice(page, aviso), moved_pool=moved)


# The CNDH age groups a coordinator may choose for a person admitted (S.I. besides).
ADMISSION_AGE_BANDS = tuple(b for b in CNDH_AGE_BANDS if b != "unknown")


def ledger_move(kind: str, reason: str, *, sex: str, age_band: str) -> dict[str, Any]:
    """The ledger entry of one bed; an admission names who, S.I. (null) where not chosen."""
    body: dict[str, Any] = {"kind": kind, "beds": 1, "reason": reason.strip()}
    if kind == "admit":
        body["people"] = [{
            "sex": sex if sex in SEXES else None,
            "age_band": age_band if age_band in ADMISSION_AGE_BANDS else None,
        }]  # fmt: skip
    return body


@router.post("/refugio/cupos/{pool_id}/movimiento")
async def move_one_bed(
    page: CoordinatorPage,
    pool_id: str,
    kind: Annotated[str, Form(max_length=20)],
    version: Annotated[str, Form(max_length=12)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    sex: Annotated[str, Form(max_length=2)] = NO_INFORMATION,
    age_band: Annotated[str, Form(max_length=8)] = NO_INFORMATION,
) -> Response:
    """One bed in (admit) or out (discharge); refused when the page was out of date. An
    admission says who came in — sex and age group, "Sin información" unless chosen."""
    pool_id = pool_id[:36]
    t = page.t
    if kind not in MOVES:
        return await _pools_page(
            page, problem=t.gettext("Choose admission or discharge."), status=422
        )
    if len(reason.strip()) < 3:
        return await _pools_page(
            page,
            problem=t.gettext("Write the reason for the change (at least 3 characters)."),
            status=422,
        )
    current = await page.api.get("capacity", f"/api/v1/pools/{pool_id}")
    if version and version != str(current["version"]):
        # Someone else changed this pool since the page was drawn: do not add a second move.
        return await _pools_page(
            page,
            problem=t.gettext(
                "The counts of “%(pool)s” changed since you opened this page. Check the "
                "current numbers below and tap again if the change is still needed.",
                pool=current["name"],
            ),
            status=409,
        )
    await page.api.post(
        "capacity",
        f"/api/v1/pools/{pool_id}/ledger",
        json=ledger_move(kind, reason, sex=sex, age_band=age_band),
    )
    return page.redirect(f"/refugio?aviso={kind}&cupo={pool_id}#pool-{pool_id}")


@router.post("/refugio/cupos/{pool_id}/confirmar")
async def confirm_pool(page: CoordinatorPage, pool_id: str) -> Response:
    await page.api.post("capacity", f"/api/v1/pools/{pool_id[:36]}/confirm")
    return page.redirect(f"/refugio?aviso=confirmed&cupo={pool_id[:36]}#pool-{pool_id[:36]}")


@router.post("/refugio/confirmar")
async def confirm_all(page: CoordinatorPage) -> Response:
    facilities = await _her_facilities(page)
    ids = [p["id"] for f in facilities if f["status"] == "active" for p in f["pools"]]
    for pool_id in ids:  # one after another: each is a short write on the same database
        await page.api.post("capacity", f"/api/v1/pools/{pool_id}/confirm")
    return page.redirect("/refugio?aviso=confirmed")


# --- incoming referrals ------------------------------------------------------------------


def remaining(due: str | None, now: datetime | None = None) -> int | None:
    """Seconds left to answer (negative when overdue)."""
    at = _parse(due)
    if at is None:
        return None
    return int((at - (now or datetime.now(UTC))).total_seconds())


def _duration(page: Page, seconds: int) -> str:
    t = page.t
    minutes = max(0, seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if hours:
        return t.gettext("%(h)s h %(m)s min", h=hours, m=f"{minutes:02d}")
    return t.gettext("%(m)s min", m=minutes)


async def _names(page: Page) -> dict[str, str]:
    return await paths.institution_names(page)


async def _facility_names(page: Page) -> dict[str, str]:
    return {f["id"]: f["name"] for f in await facility_list(page)}


@router.get("/refugio/canalizaciones")
async def inbox(page: CoordinatorPage, aviso: str | None = None) -> Response:
    institution = page.browser.row.institution_id
    referrals = [
        r
        for r in await page.api.get("referral", "/api/v1/referrals")
        if r["receiving_institution_id"] == institution and r["status"] in INBOX_STATUSES
    ]
    groups: dict[str, list[dict[str, Any]]] = {s: [] for s in INBOX_STATUSES}
    for r in referrals:
        r["remaining"] = remaining(r.get("response_due_at")) if r["status"] == "sent" else None
        groups[r["status"]].append(r)
    groups["sent"].sort(key=lambda r: r.get("response_due_at") or "")
    return page.render(
        "shelter/inbox.html",
        groups=groups,
        total=len(referrals),
        names=await _names(page),
        facilities=await _facility_names(page),
        statuses=STATUSES,
        duration=lambda s: _duration(page, s),
        notice=_notice(page, aviso),
    )


async def _referral_values(page: Page, referral_id: str) -> dict[str, Any]:
    referral = await page.api.get("referral", f"/api/v1/referrals/{referral_id[:36]}")
    if referral["receiving_institution_id"] != page.browser.row.institution_id:
        raise ApiError(403, "forbidden", "")
    left = remaining(referral.get("response_due_at")) if referral["status"] == "sent" else None
    return {
        "referral": referral,
        "remaining": left,
        "names": await _names(page),
        "facilities": await _facility_names(page),
        "statuses": STATUSES,
        "sexes": SEXES,
        "roles": ROLES,
        "age_bands": AGE_BANDS,
        "vulnerable_groups": VULNERABLE_GROUPS,
        "outcomes": OUTCOMES,
        "duration": lambda s: _duration(page, s),
        "path": await paths.path_of(page, referral["id"]),
        "detection_sources": paths.DETECTION_SOURCES,
    }


@router.get("/refugio/canalizaciones/{referral_id}")
async def referral_detail(
    page: CoordinatorPage, referral_id: str, aviso: str | None = None
) -> Response:
    values = await _referral_values(page, referral_id)
    values["stay"] = None
    if values["referral"]["status"] in STAY_STATUSES:  # the stay counter (ADR 0022)
        rid = values["referral"]["id"]
        values["stay"] = await page.api.get("referral", f"/api/v1/referrals/{rid}/stay")
        values["alerts"] = STAY_ALERTS
    return page.render("shelter/referral.html", notice=_notice(page, aviso), **values)


async def _act(
    page: Page, referral_id: str, action: str, version: str, body: dict[str, Any]
) -> None:
    headers = {"If-Match": f'"{version}"'} if version.isdigit() else {}
    await page.api.post(
        "referral", f"/api/v1/referrals/{referral_id}/{action}", json=body, headers=headers
    )


@router.post("/refugio/canalizaciones/{referral_id}/aceptar")
async def accept(
    page: CoordinatorPage, referral_id: str, version: Annotated[str, Form(max_length=12)] = ""
) -> Response:
    rid = referral_id[:36]
    await _act(page, rid, "accept", version, {})
    return page.redirect(f"/refugio/canalizaciones/{rid}?aviso=accepted")


@router.post("/refugio/canalizaciones/{referral_id}/ingreso")
async def admit(
    page: CoordinatorPage, referral_id: str, version: Annotated[str, Form(max_length=12)] = ""
) -> Response:
    rid = referral_id[:36]
    await _act(page, rid, "admit", version, {})
    return page.redirect(f"/refugio/canalizaciones/{rid}?aviso=admitted")


@router.get("/refugio/canalizaciones/{referral_id}/rechazar")
async def decline_confirm(page: CoordinatorPage, referral_id: str) -> Response:
    values = await _referral_values(page, referral_id)
    return page.render("shelter/decline.html", problems=[], reason="", **values)


@router.post("/refugio/canalizaciones/{referral_id}/rechazar")
async def decline(
    page: CoordinatorPage,
    referral_id: str,
    reason: Annotated[str, Form(max_length=500)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    rid = referral_id[:36]
    if len(reason.strip()) < 3:
        values = await _referral_values(page, rid)
        problems = [N_("Tell the prosecutor why you decline, so she can look elsewhere.")]
        return page.render(
            "shelter/decline.html", status=422, problems=problems, reason=reason, **values
        )
    await _act(page, rid, "decline", version, {"reason": reason.strip()})
    return page.redirect(f"/refugio/canalizaciones/{rid}?aviso=declined")


@router.get("/refugio/canalizaciones/{referral_id}/egreso")
async def discharge_confirm(page: CoordinatorPage, referral_id: str) -> Response:
    values = await _referral_values(page, referral_id)
    return page.render("shelter/discharge.html", problems=[], **values)


@router.post("/refugio/canalizaciones/{referral_id}/egreso")
async def discharge(
    page: CoordinatorPage,
    referral_id: str,
    outcome: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    version: Annotated[str, Form(max_length=12)] = "",
    outcome_country: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    rid = referral_id[:36]
    if outcome not in OUTCOMES:
        values = await _referral_values(page, rid)
        problems = [N_("Choose the outcome of the stay.")]
        return page.render("shelter/discharge.html", status=422, problems=problems, **values)
    body: dict[str, Any] = {"outcome": outcome}
    if reason.strip():
        body["reason"] = reason.strip()
    if outcome == Outcome.ASSISTED_RETURN and outcome_country.strip():
        body["outcome_country"] = outcome_country.strip().upper()
    try:
        await _act(page, rid, "discharge", version, body)
    except ApiError as exc:
        if exc.status != 422:
            raise
        values = await _referral_values(page, rid)
        problems = [error_message(page.t, exc)]
        return page.render("shelter/discharge.html", status=422, problems=problems, **values)
    return page.redirect(f"/refugio/canalizaciones/{rid}?aviso=discharged")

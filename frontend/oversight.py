"""SEGOB's oversight screens: roster, facility file, visits, registration, trail, statistics.

GET  /segob/padron                              the roster, filtered, with its flags
GET  /segob/padron/{facility}                   one facility: history, registration, visits
GET|POST /segob/padron/{facility}/visitas       plan a visit or record one done
GET|POST /segob/visitas/{visit}/realizada       record a planned visit as done
GET|POST /segob/visitas/{visit}/cancelar        cancel a planned visit (confirmed, reason)
POST /segob/visitas/{visit}/acciones            add a follow-up action to a done visit
POST /segob/acciones/{action}/completar         mark a follow-up action completed
GET|POST /segob/padron/{facility}/registro      review a registration against the checklist
GET  /segob/estadisticas                        charts and exports
GET  /segob/exportar/{report}                   a report as csv/xlsx/pdf (proxied download)
GET  /segob/padron.pdf, /segob/directorio-hsds.json, /segob/padron/{facility}/informe.pdf
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from frontend import paths
from frontend.api import ApiError
from frontend.dependencies import FrontendRoute, Page, error_message, require_role
from frontend.i18n import N_, STATES, TIMEZONE
from frontend.prosecutor import KINDS
from frontend.shelter import OUTCOMES, REGISTRATION
from services.vocabulary import UserRole

router = APIRouter(route_class=FrontendRoute, include_in_schema=False)

AUDITOR_ROLES = (UserRole.SEGOB_AUDITOR, UserRole.PLATFORM_ADMIN)
AuditorPage = Annotated[Page, Depends(require_role(*AUDITOR_ROLES))]

FLAGS = {
    "never_visited": N_("Never visited"),
    "visit_overdue": N_("Visit overdue"),
    "capacity_not_confirmed": N_("Capacity not confirmed recently"),
    "closed": N_("Closed"),
    "unregistered_active": N_("Active without registration"),
    "follow_up_overdue": N_("Follow-up actions overdue"),
    "stay_limit_near": N_("Stays near their maximum"),
    "stay_over_limit": N_("Stays past their maximum without extension"),
    "registered_with_observations": N_("Registered with pending observations"),
    "observations_overdue": N_("Deadline for observations passed"),
}
FACILITY_STATUSES = {
    "registered": N_("Registered, not yet operating"),
    "active": N_("Active"),
    "suspended": N_("Suspended"),
    "closed": N_("Closed"),
}
REGISTRATION_ACTIONS = {
    "submitted": N_("Submitted by the operator"),
    "returned": N_("Returned by SEGOB"),
    "registered": N_("Registered by SEGOB"),
}
# The review form's third choice: registered with observations and a deadline (ADR 0021).
OBSERVED = "observed"
VISIT_STATUSES = {"planned": N_("Planned"), "done": N_("Done"), "cancelled": N_("Cancelled")}
EXPORTS = {
    "people": N_("People referred, admitted and discharged"),
    "occupancy": N_("Occupancy"),
    "unmet-demand": N_("Unmet demand"),
    "referral-times": N_("Referral times"),
    "no-information": N_("Referrals without information by deadline"),
    "agreements-refused": N_("Referrals refused for want of an agreement"),
    "migration-routes": N_("Migration routes of foreign people"),
    "humanitarian-visas": N_("Humanitarian visas per foreign victims identified"),
    "urgent-without-agreement": N_("Urgent placements without an agreement"),
}
FORMATS = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF"}
# How a referral that never reached a discharge stands (the referral service's lines).
CLOSINGS = {
    "declined": N_("Declined by the shelter"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired without answer"),
    "in_progress": N_("In progress"),
    "no_information": N_("No information"),
}
SEXES = {"F": N_("Women"), "M": N_("Men"), "X": N_("Non-binary / other"), "S.I.": N_("No data")}
NOTICES = {
    "visit_planned": N_("The visit was planned."),
    "visit_done": N_("The visit was recorded with its findings."),
    "visit_cancelled": N_("The visit was cancelled."),
    "action_added": N_("The follow-up action was added."),
    "action_done": N_("The follow-up action was marked completed."),
    "registered": N_("The facility is now registered on the roster."),
    "returned": N_("The registration was returned to the operator with your observations."),
}
MAX_ACTIONS = 3
ROSTER_PAGE = 50  # facilities per page of the roster screen
# The roster API's filters by the names the screen's query string gives them.
SCREEN_NAMES = {"state": "estado", "kind": "tipo", "status": "situacion",
                "registration_status": "registro", "flag": "bandera"}  # fmt: skip
FIRST_REPORT_YEAR = 2012  # the General Law against trafficking in persons


def _notice(page: Page, aviso: str | None) -> str | None:
    return page.t.gettext(NOTICES[aviso]) if aviso in NOTICES else None


def _labels() -> dict[str, Any]:
    return {
        "flags": FLAGS,
        "kinds": KINDS,
        "facility_statuses": FACILITY_STATUSES,
        "registration_labels": REGISTRATION,
        "registration_actions": REGISTRATION_ACTIONS,
        "visit_statuses": VISIT_STATUSES,
    }


def _today() -> date:
    return datetime.now(UTC).astimezone(TIMEZONE).date()


# --- roster -------------------------------------------------------------------------------


@router.get("/segob/padron")
async def roster(
    page: AuditorPage,
    estado: str | None = None,
    tipo: str | None = None,
    situacion: str | None = None,
    registro: str | None = None,
    bandera: str | None = None,
    desde: str | None = None,
    pagina: str = "1",
) -> Response:
    """One page of the roster (``ROSTER_PAGE`` facilities, keyset: ``desde`` is the API's
    cursor); the filters and the flag counts are the API's, over the whole filtered roster."""
    chosen = {
        "state": estado if estado in STATES else None,
        "kind": tipo if tipo in KINDS else None,
        "status": situacion if situacion in FACILITY_STATUSES else None,
        "registration_status": registro if registro in REGISTRATION else None,
        "flag": bandera if bandera in FLAGS else None,
    }
    params = {k: v for k, v in chosen.items() if v}
    cursor = desde[:600] if desde else None
    number = int(pagina) if cursor and pagina.isdigit() and len(pagina) < 7 else 1
    try:
        paging = {"limit": ROSTER_PAGE, **({"cursor": cursor} if cursor else {})}
        answer = await page.api.get("audit", "/api/v1/roster", params={**params, **paging})
    except ApiError as exc:
        if exc.status != 422 or cursor is None:
            raise
        # A cursor this list did not make (edited by hand): the first page.
        cursor, number = None, 1
        answer = await page.api.get(
            "audit", "/api/v1/roster", params={**params, "limit": ROSTER_PAGE}
        )
    flag_counts = answer["flag_counts"]
    total = answer["total"] if answer["total"] is not None else flag_counts.get(chosen["flag"], 0)
    # The chosen filters by the screen's own names, for the page links.
    query: dict[str, Any] = {SCREEN_NAMES[key]: value for key, value in params.items()}
    next_cursor = answer["next_cursor"]
    t = page.t
    return page.render(
        "oversight/roster.html",
        items=answer["items"],
        total=total,
        flag_counts=flag_counts,
        chosen=chosen,
        filtered=bool(params),
        query=query,
        number=number,
        page_size=ROSTER_PAGE,
        paged=cursor is not None or next_cursor is not None,
        first=None if cursor is None else query,
        next=None if next_cursor is None else {**query, "desde": next_cursor, "pagina": number + 1},
        states=sorted(STATES, key=lambda code: t.state(code)),
        **_labels(),
    )


async def _facility_values(page: Page, facility_id: str) -> dict[str, Any]:
    fid = facility_id[:64]
    line = await page.api.get("audit", f"/api/v1/roster/{fid}")
    facility, history, registration = await page.api.gather(
        page.api.get("capacity", f"/api/v1/facilities/{fid}"),
        page.api.get("capacity", f"/api/v1/facilities/{fid}/status-history"),
        page.api.get("capacity", f"/api/v1/facilities/{fid}/registration"),
    )
    line["visits"].sort(key=lambda v: v.get("done_on") or v.get("planned_for") or "", reverse=True)
    return {
        "line": line,
        "facility": facility,
        "history": sorted(history, key=lambda h: h["at"], reverse=True),
        "registration": registration,
        "today": _today().isoformat(),
        "year": _today().year,
        # Any year the platform may hold data for, newest first (not only the current one).
        "years": list(range(_today().year, FIRST_REPORT_YEAR - 1, -1)),
        **_labels(),
    }


@router.get("/segob/padron/{facility_id}")
async def facility_detail(
    page: AuditorPage, facility_id: str, aviso: str | None = None
) -> Response:
    values = await _facility_values(page, facility_id)
    return page.render("oversight/facility.html", notice=_notice(page, aviso), **values)


# --- visits -------------------------------------------------------------------------------


def _team(raw: str) -> list[str]:
    return [line.strip()[:200] for line in raw.splitlines() if line.strip()][:20]


def _actions(form: Any) -> tuple[list[dict[str, str]], list[str]]:
    """Follow-up actions typed in the form (description + due date), and problems."""
    descriptions, dues = form.getlist("action_description"), form.getlist("action_due_on")
    actions: list[dict[str, str]] = []
    problems: list[str] = []
    for i, raw in enumerate(descriptions[:MAX_ACTIONS]):
        description = str(raw).strip()[:1000]
        due = str(dues[i] if i < len(dues) else "").strip()
        if not description and not due:
            continue
        if len(description) < 3 or not _is_date(due):
            problems.append(N_("Each follow-up action needs a description and a due date."))
            continue
        actions.append({"description": description, "due_on": due})
    return actions, problems


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _visit_problems(mode: str, when: str, team: list[str], findings: str) -> list[str]:
    problems: list[str] = []
    if not _is_date(when):
        problems.append(N_("Give the date of the visit."))
    elif mode == "done" and date.fromisoformat(when) > _today():
        problems.append(N_("A visit already done cannot have a future date."))
    if not team:
        problems.append(N_("Name at least one member of the visiting team (one per line)."))
    if mode == "done" and len(findings) < 3:
        problems.append(N_("Write the findings of the visit."))
    return problems


async def _visit_form(
    page: Page,
    facility_id: str,
    *,
    problems: Sequence[str] = (),
    form: Any = None,
    status: int = 200,
) -> Response:
    line = await page.api.get("audit", f"/api/v1/roster/{facility_id[:64]}")
    return page.render(
        "oversight/visit_new.html",
        status=status,
        line=line,
        problems=list(problems),
        form=form or {},
        today=_today().isoformat(),
        max_actions=MAX_ACTIONS,
    )


@router.get("/segob/padron/{facility_id}/visitas")
async def visit_new(page: AuditorPage, facility_id: str) -> Response:
    return await _visit_form(page, facility_id)


@router.post("/segob/padron/{facility_id}/visitas")
async def visit_create(page: AuditorPage, facility_id: str, request: Request) -> Response:
    fid = facility_id[:64]
    form = await request.form()
    mode = "done" if form.get("mode") == "done" else "planned"
    when = str(form.get("done_on" if mode == "done" else "planned_for") or "").strip()
    team = _team(str(form.get("team") or ""))
    findings = str(form.get("findings") or "").strip()[:5000]
    actions, action_problems = _actions(form) if mode == "done" else ([], [])
    problems = _visit_problems(mode, when, team, findings) + action_problems
    if problems:
        return await _visit_form(page, fid, problems=problems, form=form, status=422)
    body: dict[str, Any] = {"facility_id": fid, "team": team}
    if mode == "done":
        body.update(done_on=when, findings=findings, actions=actions)
    else:
        body["planned_for"] = when
    try:
        await page.api.post("audit", "/api/v1/visits", json=body)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        problem = error_message(page.t, exc)
        return await _visit_form(page, fid, problems=[problem], form=form, status=exc.status)
    aviso = "visit_done" if mode == "done" else "visit_planned"
    return page.redirect(f"/segob/padron/{fid}?aviso={aviso}#visits")


@router.get("/segob/visitas/{visit_id}/realizada")
async def visit_done_form(page: AuditorPage, visit_id: str) -> Response:
    visit = await page.api.get("audit", f"/api/v1/visits/{visit_id[:64]}")
    return page.render(
        "oversight/visit_done.html",
        visit=visit,
        problems=[],
        form={"team": "\n".join(visit["team"])},
        today=_today().isoformat(),
        max_actions=MAX_ACTIONS,
    )


@router.post("/segob/visitas/{visit_id}/realizada")
async def visit_done(page: AuditorPage, visit_id: str, request: Request) -> Response:
    vid = visit_id[:64]
    visit = await page.api.get("audit", f"/api/v1/visits/{vid}")
    form = await request.form()
    when = str(form.get("done_on") or "").strip()
    team = _team(str(form.get("team") or ""))
    findings = str(form.get("findings") or "").strip()[:5000]
    actions, action_problems = _actions(form)
    problems = _visit_problems("done", when, team, findings) + action_problems
    if not problems:
        body = {"done_on": when, "team": team, "findings": findings, "actions": actions}
        try:
            await page.api.post("audit", f"/api/v1/visits/{vid}/done", json=body)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            problems = [error_message(page.t, exc)]
        else:
            return page.redirect(f"/segob/padron/{visit['facility_id']}?aviso=visit_done#visits")
    return page.render(
        "oversight/visit_done.html",
        status=422,
        visit=visit,
        problems=problems,
        form=form,
        today=_today().isoformat(),
        max_actions=MAX_ACTIONS,
    )


@router.get("/segob/visitas/{visit_id}/cancelar")
async def visit_cancel_confirm(page: AuditorPage, visit_id: str) -> Response:
    visit = await page.api.get("audit", f"/api/v1/visits/{visit_id[:64]}")
    return page.render("oversight/visit_cancel.html", visit=visit, problems=[])


@router.post("/segob/visitas/{visit_id}/cancelar")
async def visit_cancel(
    page: AuditorPage, visit_id: str, reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    vid = visit_id[:64]
    visit = await page.api.get("audit", f"/api/v1/visits/{vid}")
    if len(reason.strip()) < 3:
        problems = [N_("Write why the visit is cancelled.")]
        return page.render(
            "oversight/visit_cancel.html", status=422, visit=visit, problems=problems
        )
    await page.api.post("audit", f"/api/v1/visits/{vid}/cancel", json={"reason": reason.strip()})
    return page.redirect(f"/segob/padron/{visit['facility_id']}?aviso=visit_cancelled#visits")


@router.post("/segob/visitas/{visit_id}/acciones")
async def action_add(
    page: AuditorPage,
    visit_id: str,
    description: Annotated[str, Form(max_length=1000)] = "",
    due_on: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    vid = visit_id[:64]
    if len(description.strip()) < 3 or not _is_date(due_on):
        raise ApiError(
            422,
            "action_incomplete",
            page.t.gettext("Each follow-up action needs a description and a due date."),
        )
    action = await page.api.post(
        "audit",
        f"/api/v1/visits/{vid}/actions",
        json={"description": description.strip(), "due_on": due_on},
    )
    return page.redirect(f"/segob/padron/{action['facility_id']}?aviso=action_added#visits")


@router.post("/segob/acciones/{action_id}/completar")
async def action_complete(
    page: AuditorPage, action_id: str, note: Annotated[str, Form(max_length=1000)] = ""
) -> Response:
    body = {"note": note.strip()} if note.strip() else {}
    action = await page.api.post("audit", f"/api/v1/actions/{action_id[:64]}/complete", json=body)
    return page.redirect(f"/segob/padron/{action['facility_id']}?aviso=action_done#visits")


# --- registration review --------------------------------------------------------------------


async def _review_form(
    page: Page,
    facility_id: str,
    *,
    problems: Sequence[str] = (),
    form: Any = None,
    status: int = 200,
) -> Response:
    fid = facility_id[:64]
    facility, registration = await page.api.gather(
        page.api.get("capacity", f"/api/v1/facilities/{fid}"),
        page.api.get("capacity", f"/api/v1/facilities/{fid}/registration"),
    )
    met = set(form.getlist("met")) if form is not None else set()
    return page.render(
        "oversight/review.html",
        status=status,
        facility=facility,
        registration=registration,
        problems=list(problems),
        form=form or {},
        met=met,
        **_labels(),
    )


@router.get("/segob/padron/{facility_id}/registro")
async def review_form(page: AuditorPage, facility_id: str) -> Response:
    return await _review_form(page, facility_id)


@router.post("/segob/padron/{facility_id}/registro")
async def review(page: AuditorPage, facility_id: str, request: Request) -> Response:
    fid = facility_id[:64]
    form = await request.form()
    outcome = form.get("outcome")
    observations = str(form.get("observations") or "").strip()[:2000]
    registration = await page.api.get("capacity", f"/api/v1/facilities/{fid}/registration")
    met = set(form.getlist("met"))
    checklist = []
    for item in registration["checklist"]:
        code = item["item"]
        answer: dict[str, Any] = {"item": code, "met": code in met}
        note = str(form.get(f"note_{code}") or "").strip()[:500]
        if note:
            answer["note"] = note
        checklist.append(answer)
    problems: list[str] = []
    due_on = str(form.get("due_on") or "")
    if outcome not in ("registered", "returned", OBSERVED):
        problems.append(N_("Choose whether to register the facility or return the file."))
    if outcome == "registered" and len(met) < len(checklist):
        problems.append(N_("A facility can only be registered when every item is met."))
    if outcome in ("returned", OBSERVED) and len(observations) < 3:
        problems.append(N_("Write the observations the operator must address."))
    if outcome == OBSERVED and not _is_date(due_on):
        problems.append(N_("Give the date by which the missing items must be met."))
    if not problems:
        body: dict[str, Any] = {"outcome": outcome, "checklist": checklist}
        if outcome == OBSERVED:  # registered, the unmet items pending until due_on (ADR 0021)
            body.update(outcome="registered", due_on=due_on)
        if observations:
            body["observations"] = observations
        try:
            await page.api.post(
                "capacity", f"/api/v1/facilities/{fid}/registration/review", json=body
            )
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            problems = [error_message(page.t, exc)]
        else:
            return page.redirect(f"/segob/padron/{fid}?aviso={body['outcome']}")
    return await _review_form(page, fid, problems=problems, form=form, status=422)


# --- statistics and exports -----------------------------------------------------------------


def _figure(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _chart(
    labels: list[str], series: list[tuple[str, list[Any]]], kind: str = "bar"
) -> dict[str, Any]:
    """What the template draws: a Chart.js configuration (as JSON) and the same as a table."""
    config = {
        "type": kind,
        "labels": labels,
        "series": [
            {"label": name, "values": [_figure(v) for v in values]} for name, values in series
        ],
    }
    return {"labels": labels, "series": series, "json": json.dumps(config, ensure_ascii=False)}


def _sex_label(page: Page, code: str) -> str:
    label = SEXES.get(code)
    return page.t.gettext(label) if label else code


@router.get("/segob/estadisticas")
async def statistics(page: AuditorPage) -> Response:
    t = page.t
    occupancy, by_state, by_sex, by_age, outcomes = await page.api.gather(
        page.api.get("audit", "/api/v1/reports/occupancy", params={"by": "period"}),
        page.api.get("audit", "/api/v1/reports/unmet-demand", params={"by": "state"}),
        page.api.get("audit", "/api/v1/reports/unmet-demand", params={"by": "sex"}),
        page.api.get("audit", "/api/v1/reports/unmet-demand", params={"by": "age_group"}),
        page.api.get("referral", "/api/v1/referrals/reports/outcomes"),
    )
    rows = sorted(occupancy["rows"], key=lambda r: r["period"])
    charts = {
        "occupancy": _chart(
            [r["period"] for r in rows],
            [
                (t.gettext("Beds"), [r["beds"] for r in rows]),
                (t.gettext("Occupied"), [r["occupied"] for r in rows]),
            ],
            kind="line",
        ),
        "unmet_state": _chart(
            [
                t.state(r["state"]) if r["state"] in STATES else t.gettext("No information")
                for r in by_state["rows"]
            ],
            [(t.gettext("People without a place"), [r["people"] for r in by_state["rows"]])],
        ),
        "unmet_sex": _chart(
            [_sex_label(page, r["sex"]) for r in by_sex["rows"]],
            [(t.gettext("People without a place"), [r["people"] for r in by_sex["rows"]])],
        ),
        "unmet_age": _chart(
            [t.age_group(r["age_group"]) for r in by_age["rows"]],
            [(t.gettext("People without a place"), [r["people"] for r in by_age["rows"]])],
        ),
    }
    discharged: dict[str, int] = {}
    closed: dict[str, int] = {}
    for line in outcomes:
        # Only a discharge is an outcome; a declined, cancelled or expired referral never
        # reached the shelter and is counted apart.
        into = discharged if line["outcome"] in OUTCOMES else closed
        into[line["outcome"]] = into.get(line["outcome"], 0) + int(line["count"])
    charts["outcomes"] = _chart(
        [t.gettext(OUTCOMES[o]) for o in discharged],
        [(t.gettext("Referrals discharged"), list(discharged.values()))],
    )
    charts["closings"] = _chart(
        [t.gettext(CLOSINGS.get(o, CLOSINGS["no_information"])) for o in closed],
        [(t.gettext("Referrals"), list(closed.values()))],
    )
    return page.render(
        "oversight/statistics.html",
        charts=charts,
        exports=EXPORTS,
        formats=FORMATS,
        **await paths.statistics_values(page),
    )


async def _download(
    page: Page, service: str, path: str, params: dict[str, str], filename: str
) -> Response:
    """A file from a service, passed to the browser (which holds no token)."""
    return await page.download(service, path, params, filename)


@router.get("/segob/exportar/{name}")
async def export_report(page: AuditorPage, name: str, formato: str = "csv") -> Response:
    if name not in EXPORTS or formato not in FORMATS:
        raise ApiError(404, "not_found", "")
    return await _download(
        page, "audit", f"/api/v1/reports/{name}", {"format": formato}, f"{name}.{formato}"
    )


@router.get("/segob/padron.pdf")
async def roster_pdf(page: AuditorPage) -> Response:
    return await _download(page, "audit", "/api/v1/roster", {"format": "pdf"}, "padron.pdf")


@router.get("/segob/directorio-hsds.json")
async def hsds_directory(page: AuditorPage) -> Response:
    response = await _download(page, "audit", "/api/v1/directory/hsds", {}, "directorio-hsds.json")
    response.headers["Content-Disposition"] = 'attachment; filename="directorio-hsds.json"'
    return response


@router.get("/segob/padron/{facility_id}/informe.pdf")
async def monthly_report(page: AuditorPage, facility_id: str, anio: str = "") -> Response:
    year = int(anio) if anio.isdigit() and 2000 <= int(anio) <= 2100 else _today().year
    response = await _download(
        page,
        "audit",
        f"/api/v1/roster/{facility_id[:64]}/monthly-report",
        {"year": str(year), "format": "pdf"},
        f"informe-mensual-{year}.pdf",
    )
    # The file's name a person keeps: the year, not the facility's id.
    response.headers["Content-Disposition"] = f'attachment; filename="informe-mensual-{year}.pdf"'
    return response

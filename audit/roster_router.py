"""SEGOB's roster, visits and follow-up actions (thin: ``audit.flows`` does the work)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from audit import flows, roster, visits
from audit.dependencies import OversightWriter, ReadSessionDep, TrailReader
from audit.schemas import (
    ActionComplete,
    ActionCreate,
    ActionOut,
    RosterDetail,
    RosterPage,
    VisitCancel,
    VisitCreate,
    VisitDone,
    VisitOut,
)
from services.security import PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["roster"])

FlagName = Literal[
    "never_visited",
    "visit_overdue",
    "capacity_not_confirmed",
    "closed",
    "unregistered_active",
    "follow_up_overdue",
    "stay_limit_near",
    "stay_over_limit",
    "registered_with_observations",
    "observations_overdue",
]
KindName = Literal["refugio", "albergue", "casa_de_medio_camino"]
StatusName = Literal["registered", "active", "suspended", "closed"]
RegistrationName = Literal["not_submitted", "submitted", "returned", "registered"]
DEFAULT_PAGE = 100


@router.get("/roster", response_model=RosterPage)
def get_roster(
    session: ReadSessionDep,
    principal: TrailReader,
    state: Annotated[str | None, Query(pattern=r"^(0[1-9]|[12][0-9]|3[0-2])$")] = None,
    kind: KindName | None = None,
    status: StatusName | None = None,
    registration_status: RegistrationName | None = None,
    flag: FlagName | None = None,
    format: Literal["json", "pdf"] = "json",
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
) -> Any:
    """The roster with its flags, filtered; ``format=pdf`` for the printable one.

    With ``limit`` (JSON only), one page in the roster's order (state, name, id) and the
    ``next_cursor`` to ask for the next with ``cursor``. ``total`` counts the filtered
    facilities without the flag filter (``null`` with one); ``flag_counts`` are those of
    every facility the filters select, paged or not (ADR 0027).
    """
    filters: dict[str, Any] = {
        "state": state,
        "kind": kind,
        "status": status,
        "registration_status": registration_status,
    }
    if format == "json" and (limit is not None or cursor is not None):
        page, next_cursor = roster.roster_page(
            session, limit=limit or DEFAULT_PAGE, cursor=cursor, flag=flag, **filters
        )
        return {
            "items": page,
            "total": None if flag else roster.roster_total(session, **filters),
            "flag_counts": roster.count_flags(session, flag=flag, **filters),
            "flags": roster.FLAGS,
            "next_cursor": next_cursor,
        }
    items = roster.roster(session, flag=flag, **filters)
    if format == "pdf":
        return Response(
            flows.roster_pdf(principal, items),
            media_type="application/pdf",
            headers={"content-disposition": 'attachment; filename="padron.pdf"'},
        )
    return {
        "items": items,
        "total": len(items),
        "flag_counts": roster.flag_counts(items),
        "flags": roster.FLAGS,
    }


@router.get("/roster/{facility_id}", response_model=RosterDetail)
def get_roster_facility(facility_id: str, session: ReadSessionDep, _: TrailReader) -> Any:
    """One facility's roster line with its visits and follow-up actions."""
    return roster.facility_detail(session, facility_id)


@router.get("/roster/{facility_id}/monthly-report")
def monthly_report(
    facility_id: str,
    session: ReadSessionDep,
    principal: TrailReader,
    year: Annotated[int, Query(ge=2000, le=2100)],
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    format: Literal["json", "pdf"] = "json",
) -> Any:
    """The facility's monthly figures in the shape of the shelters' annex: one month, or
    every month of ``year``. JSON for auditors as counted; the PDF has small counts hidden."""
    report, info = flows.monthly_report(session, facility_id=facility_id, year=year, month=month)
    if format == "json":
        return {**report, "facility": info}
    return Response(
        flows.monthly_report_pdf(principal, report, info),
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="informe-{facility_id}-{year}.pdf"'},
    )


@router.get("/visits", response_model=list[VisitOut])
def list_visits(
    session: ReadSessionDep,
    _: TrailReader,
    facility_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["planned", "done", "cancelled"] | None = None,
) -> Any:
    found = visits.list_visits(session, facility_id=facility_id, status=status)
    return [flows.visit_answer(session, v) for v in found]


@router.get("/visits/{visit_id}", response_model=VisitOut)
def get_visit(visit_id: str, session: ReadSessionDep, _: TrailReader) -> Any:
    return flows.visit_answer(session, visits.get_visit(session, visit_id))


@router.post("/visits", status_code=201, response_model=VisitOut)
def create_visit(body: VisitCreate, principal: OversightWriter) -> Any:
    """Plan a visit, or record one already done with its findings and follow-up actions."""
    return flows.create_visit(
        principal,
        facility_id=body.facility_id,
        planned_for=body.planned_for,
        done_on=body.done_on,
        team=body.team,
        findings=body.findings,
        actions=[(a.description, a.due_on) for a in body.actions],
    )


@router.post("/visits/{visit_id}/done", response_model=VisitOut)
def record_visit_done(visit_id: str, body: VisitDone, principal: OversightWriter) -> Any:
    """A planned visit took place: date, team, findings, follow-up actions."""
    return flows.record_visit_done(
        principal,
        visit_id=visit_id,
        done_on=body.done_on,
        team=body.team,
        findings=body.findings,
        actions=[(a.description, a.due_on) for a in body.actions],
    )


@router.post("/visits/{visit_id}/cancel", response_model=VisitOut)
def cancel_visit(visit_id: str, body: VisitCancel, principal: OversightWriter) -> Any:
    return flows.cancel_visit(principal, visit_id=visit_id, reason=body.reason)


@router.post("/visits/{visit_id}/actions", status_code=201, response_model=ActionOut)
def add_action(visit_id: str, body: ActionCreate, principal: OversightWriter) -> Any:
    """A follow-up action with its due date, from a done visit."""
    return flows.add_action(
        principal, visit_id=visit_id, description=body.description, due_on=body.due_on
    )


@router.post("/actions/{action_id}/complete", response_model=ActionOut)
def complete_action(action_id: str, body: ActionComplete, principal: OversightWriter) -> Any:
    """Record that a follow-up action was done (late if after its due date)."""
    return flows.complete_action(principal, action_id=action_id, note=body.note)


@router.get("/directory/hsds")
def hsds_directory(session: ReadSessionDep, principal: PrincipalDep) -> Any:
    """The public directory (Open Referral HSDS 3.0): no address of any facility."""
    return flows.hsds_directory(session, principal)

"""SEGOB's roster, visits and follow-up actions (thin: logic lives in ``audit.roster``)."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from audit import directory, monthly, roster
from audit.database import db
from audit.dependencies import OversightWriter, SessionDep, TrailReader
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
from audit.service import record_export
from services.security import PrincipalDep

router = APIRouter(prefix="/api/v1", tags=["roster"])

FlagName = Literal[
    "never_visited",
    "visit_overdue",
    "capacity_not_confirmed",
    "closed",
    "unregistered_active",
    "follow_up_overdue",
]
KindName = Literal["refugio", "albergue", "casa_de_medio_camino"]
StatusName = Literal["registered", "active", "suspended", "closed"]
RegistrationName = Literal["not_submitted", "submitted", "returned", "registered"]


@contextlib.contextmanager
def _write() -> Any:
    """The request's write transaction, opened and committed in the handler's thread."""
    yield from db.session_scope(write=True)


@router.get("/roster", response_model=RosterPage)
def get_roster(
    session: SessionDep,
    principal: TrailReader,
    state: Annotated[str | None, Query(pattern=r"^(0[1-9]|[12][0-9]|3[0-2])$")] = None,
    kind: KindName | None = None,
    status: StatusName | None = None,
    registration_status: RegistrationName | None = None,
    flag: FlagName | None = None,
    format: Literal["json", "pdf"] = "json",
) -> Any:
    """The roster with its computed flags, filtered; ``format=pdf`` for the printable one."""
    items = roster.roster(
        session,
        state=state,
        kind=kind,
        status=status,
        registration_status=registration_status,
        flag=flag,
    )
    if format == "pdf":
        from audit.pdfs import roster_pdf

        with _write() as write:
            record_export(write, principal, name="roster", fmt="pdf")
        return Response(
            roster_pdf(items, roster.flag_counts(items)),
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
def get_roster_facility(facility_id: str, session: SessionDep, _: TrailReader) -> Any:
    """One facility's roster line with its visits and follow-up actions."""
    return roster.facility_detail(session, facility_id)


@router.get("/roster/{facility_id}/monthly-report")
def monthly_report(
    facility_id: str,
    session: SessionDep,
    principal: TrailReader,
    year: Annotated[int, Query(ge=2000, le=2100)],
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    format: Literal["json", "pdf"] = "json",
) -> Any:
    """The facility's monthly figures in the shape of the shelters' annex: one month, or
    every month of ``year``. JSON for auditors as counted; the PDF has small counts hidden."""
    fac = roster.get_roster_facility(session, facility_id)
    report = monthly.build(
        session,
        facility_id=facility_id,
        year=year,
        months=[month] if month else list(range(1, 13)),
    )
    info = {"name": fac.name, "kind": fac.kind, "state": fac.state}
    if format == "json":
        return {**report, "facility": info}
    from audit.pdfs import monthly_pdf

    with _write() as write:
        record_export(write, principal, name="facility-monthly", fmt="pdf")
    return Response(
        monthly_pdf(monthly.suppressed(report), info),
        media_type="application/pdf",
        headers={"content-disposition": f'attachment; filename="informe-{facility_id}-{year}.pdf"'},
    )


@router.get("/visits", response_model=list[VisitOut])
def list_visits(
    session: SessionDep,
    _: TrailReader,
    facility_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["planned", "done", "cancelled"] | None = None,
) -> Any:
    visits = roster.list_visits(session, facility_id=facility_id, status=status)
    return [roster.visit_view(v, roster.actions_of(session, v.id)) for v in visits]


@router.get("/visits/{visit_id}", response_model=VisitOut)
def get_visit(visit_id: str, session: SessionDep, _: TrailReader) -> Any:
    visit = roster.get_visit(session, visit_id)
    return roster.visit_view(visit, roster.actions_of(session, visit.id))


def _visit_answer(session: Any, visit: Any) -> dict[str, Any]:
    return roster.visit_view(visit, roster.actions_of(session, visit.id))


@router.post("/visits", status_code=201, response_model=VisitOut)
def create_visit(body: VisitCreate, principal: OversightWriter) -> Any:
    """Plan a visit, or record one already done with its findings and follow-up actions."""
    with _write() as session:
        visit = roster.create_visit(
            session,
            principal=principal,
            facility_id=body.facility_id,
            planned_for=body.planned_for,
            done_on=body.done_on,
            team=body.team,
            findings=body.findings,
            actions=[(a.description, a.due_on) for a in body.actions],
        )
        return _visit_answer(session, visit)


@router.post("/visits/{visit_id}/done", response_model=VisitOut)
def record_visit_done(visit_id: str, body: VisitDone, principal: OversightWriter) -> Any:
    """A planned visit took place: date, team, findings, follow-up actions."""
    with _write() as session:
        visit = roster.record_visit_done(
            session,
            principal=principal,
            visit_id=visit_id,
            done_on=body.done_on,
            team=body.team,
            findings=body.findings,
            actions=[(a.description, a.due_on) for a in body.actions],
        )
        return _visit_answer(session, visit)


@router.post("/visits/{visit_id}/cancel", response_model=VisitOut)
def cancel_visit(visit_id: str, body: VisitCancel, principal: OversightWriter) -> Any:
    with _write() as session:
        visit = roster.cancel_visit(
            session, principal=principal, visit_id=visit_id, reason=body.reason
        )
        return _visit_answer(session, visit)


@router.post("/visits/{visit_id}/actions", status_code=201, response_model=ActionOut)
def add_action(visit_id: str, body: ActionCreate, principal: OversightWriter) -> Any:
    """A follow-up action with its due date, from a done visit."""
    with _write() as session:
        visit = roster.get_visit(session, visit_id)
        action = roster.add_action(
            session,
            principal=principal,
            visit=visit,
            description=body.description,
            due_on=body.due_on,
        )
        return roster.action_view(action)


@router.post("/actions/{action_id}/complete", response_model=ActionOut)
def complete_action(action_id: str, body: ActionComplete, principal: OversightWriter) -> Any:
    """Record that a follow-up action was done (late if after its due date)."""
    with _write() as session:
        action = roster.complete_action(
            session, principal=principal, action_id=action_id, note=body.note
        )
        return roster.action_view(action)


@router.get("/directory/hsds")
def hsds_directory(session: SessionDep, principal: PrincipalDep) -> Any:
    """The public directory (Open Referral HSDS 3.0): no address of any facility."""
    answer = directory.hsds_export(session)
    with _write() as write:
        record_export(write, principal, name="directory-hsds", fmt="json")
    return answer

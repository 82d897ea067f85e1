"""SEGOB's visits to facilities and the follow-up actions they leave.

Every change is an event of the audit service (``services.contracts.audit``): written to
its outbox and appended to the trail in the same transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from audit.database import outbox
from audit.exceptions import VisitConflict, VisitNotFound
from audit.models import FollowUpAction, Visit
from audit.projection import get_roster_facility
from audit.roster_state import refresh
from audit.service import record_event
from services.clock import as_utc, as_utc_or_none, utcnow
from services.contracts import EventPayload, emit
from services.contracts.audit import VISIT_EVENTS, ActionAdded, ActionCompleted, VisitChanged
from services.errors import NotFound
from services.tokens import Principal


def action_view(a: FollowUpAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "visit_id": a.visit_id,
        "facility_id": a.facility_id,
        "description": a.description,
        "due_on": a.due_on,
        "completed_at": as_utc_or_none(a.completed_at),
        "completed_by": a.completed_by,
        "completion_note": a.completion_note,
        "overdue": a.completed_at is None and a.due_on < utcnow().date(),
    }


def visit_view(v: Visit, actions: list[FollowUpAction]) -> dict[str, Any]:
    return {
        "id": v.id,
        "facility_id": v.facility_id,
        "status": v.status,
        "planned_for": v.planned_for,
        "done_on": v.done_on,
        "team": list(v.team),
        "findings": v.findings,
        "created_by": v.created_by,
        "created_at": as_utc(v.created_at),
        "updated_at": as_utc(v.updated_at),
        "version": v.version,
        "actions": [action_view(a) for a in actions],
    }


def list_visits(
    session: Session, *, facility_id: str | None = None, status: str | None = None
) -> list[Visit]:
    stmt = select(Visit)
    if facility_id:
        stmt = stmt.where(col(Visit.facility_id) == facility_id)
    if status:
        stmt = stmt.where(col(Visit.status) == status)
    return list(
        session.execute(
            stmt.order_by(col(Visit.facility_id), col(Visit.created_at), col(Visit.id))
        ).scalars()
    )


def get_visit(session: Session, visit_id: str) -> Visit:
    visit = session.get(Visit, visit_id)
    if visit is None:
        raise VisitNotFound()
    return visit


def actions_of(session: Session, visit_id: str) -> list[FollowUpAction]:
    return list(
        session.execute(
            select(FollowUpAction)
            .where(col(FollowUpAction.visit_id) == visit_id)
            .order_by(col(FollowUpAction.due_on), col(FollowUpAction.created_at))
        ).scalars()
    )


def _record(session: Session, principal: Principal, payload: EventPayload, *, aggregate_id: str,
            version: int) -> None:  # fmt: skip
    """Emit ``payload`` through the outbox and append it to the trail, in this transaction."""
    event = emit(
        outbox, session, payload, aggregate_id=aggregate_id, principal=principal, version=version
    )
    record_event(session, event)


def visit_changed(v: Visit) -> VisitChanged:
    """The one builder of a visit's event (its type follows the visit's status)."""
    return VISIT_EVENTS[v.status](
        visit_id=v.id,
        facility_id=v.facility_id,
        status=v.status,
        planned_for=v.planned_for.isoformat() if v.planned_for else None,
        done_on=v.done_on.isoformat() if v.done_on else None,
        team_size=len(v.team),
        findings=v.findings,
    )


def action_added(action: FollowUpAction) -> ActionAdded:
    return ActionAdded(
        action_id=action.id,
        visit_id=action.visit_id,
        facility_id=action.facility_id,
        description=action.description,
        due_on=action.due_on.isoformat(),
    )


def action_completed(action: FollowUpAction, *, late: bool) -> ActionCompleted:
    return ActionCompleted(
        action_id=action.id,
        visit_id=action.visit_id,
        facility_id=action.facility_id,
        due_on=action.due_on.isoformat(),
        late=late,
        note=action.completion_note,
    )


def create_visit(
    session: Session,
    *,
    principal: Principal,
    facility_id: str,
    planned_for: date | None,
    done_on: date | None,
    team: list[str],
    findings: str | None,
    actions: list[tuple[str, date]],
) -> Visit:
    """Plan a visit, or record one already done (with findings and follow-up actions)."""
    get_roster_facility(session, facility_id)
    now = utcnow()
    visit = Visit(
        facility_id=facility_id,
        status="done" if done_on else "planned",
        planned_for=planned_for,
        done_on=done_on,
        team=team,
        findings=findings,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(visit)
    session.flush()
    _record(session, principal, visit_changed(visit), aggregate_id=visit.id, version=visit.version)
    for description, due_on in actions:
        add_action(
            session, principal=principal, visit=visit, description=description, due_on=due_on
        )
    refresh(session, [facility_id], ["visits"])
    return visit


def record_visit_done(
    session: Session,
    *,
    principal: Principal,
    visit_id: str,
    done_on: date,
    team: list[str] | None,
    findings: str,
    actions: list[tuple[str, date]],
) -> Visit:
    """A planned visit took place: its date, team and findings."""
    visit = get_visit(session, visit_id)
    if visit.status != "planned":
        raise VisitConflict(
            "Sólo una visita programada puede registrarse como realizada.",
            extra={"visit_status": visit.status},
        )
    visit.status = "done"
    visit.done_on = done_on
    if team:
        visit.team = team
    visit.findings = findings
    _save_visit(session, principal, visit)
    for description, due_on in actions:
        add_action(
            session, principal=principal, visit=visit, description=description, due_on=due_on
        )
    return visit


def _save_visit(session: Session, principal: Principal, visit: Visit) -> None:
    """A changed visit: a new version, written, its event on the trail and the roster's
    line refreshed."""
    visit.updated_at = utcnow()
    visit.version += 1
    session.add(visit)
    session.flush()
    _record(session, principal, visit_changed(visit), aggregate_id=visit.id, version=visit.version)
    refresh(session, [visit.facility_id], ["visits"])


def cancel_visit(session: Session, *, principal: Principal, visit_id: str, reason: str) -> Visit:
    visit = get_visit(session, visit_id)
    if visit.status != "planned":
        raise VisitConflict(
            "Sólo se cancela una visita programada.", extra={"visit_status": visit.status}
        )
    visit.status = "cancelled"
    visit.findings = reason
    _save_visit(session, principal, visit)
    return visit


def add_action(
    session: Session, *, principal: Principal, visit: Visit, description: str, due_on: date
) -> FollowUpAction:
    """A follow-up action from a done visit, due by a date."""
    if visit.status != "done":
        raise VisitConflict(
            "Las acciones de seguimiento se derivan de una visita realizada.",
            extra={"visit_status": visit.status},
        )
    action = FollowUpAction(
        visit_id=visit.id,
        facility_id=visit.facility_id,
        description=description,
        due_on=due_on,
        created_by=principal.sub,
        created_at=utcnow(),
    )
    session.add(action)
    session.flush()
    _record(session, principal, action_added(action), aggregate_id=action.id, version=1)
    refresh(session, [action.facility_id], ["actions"])
    return action


def complete_action(
    session: Session, *, principal: Principal, action_id: str, note: str | None
) -> FollowUpAction:
    action = session.get(FollowUpAction, action_id)
    if action is None:
        raise NotFound("No existe esa acción de seguimiento.", code="action_not_found")
    if action.completed_at is not None:
        raise VisitConflict("La acción ya estaba cumplida.", code="action_already_completed")
    action.completed_at = utcnow()
    action.completed_by = principal.sub
    action.completion_note = note
    session.add(action)
    session.flush()
    late = action.completed_at.date() > action.due_on
    _record(
        session, principal, action_completed(action, late=late), aggregate_id=action.id, version=2
    )
    refresh(session, [action.facility_id], ["actions"])
    return action

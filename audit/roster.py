# SQLModel columns compared in where() are typed as bool; SQLAlchemy accepts them.
# mypy: disable-error-code="arg-type,call-overload"
"""SEGOB's roster: a projection of capacity's facility events, visits, follow-up actions.

The projection is written in the same transaction that appends an event to the trail and
can be rebuilt from the trail alone (``rebuild``). It never holds an address: capacity's
events carry none and the trail strips address keys anyway. Flags are computed on read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from audit.exceptions import FacilityNotOnRoster, VisitConflict, VisitNotFound
from audit.models import AuditEntry, FollowUpAction, RosterFacility, RosterPool, Visit
from services.clock import as_utc, parse_utc, utcnow
from services.errors import NotFound
from services.events import Event
from services.settings import get_settings
from services.tokens import Principal

FLAGS: dict[str, str] = {
    "never_visited": "Nunca visitada",
    "visit_overdue": "Visita vencida",
    "capacity_not_confirmed": "Capacidad sin confirmar recientemente",
    "closed": "Cerrada",
    "unregistered_active": "Activa sin registro",
    "follow_up_overdue": "Acciones de seguimiento vencidas",
}
REGISTRATION_STATUSES = ("not_submitted", "submitted", "returned", "registered")
FACILITY_PREFIX = "capacity.facility."
POOL_EVENT = "capacity.pool.changed"
# One entry of capacity's bulk roster import: many facilities and pool snapshots at once.
ROSTER_IMPORTED = "capacity.roster.imported"


# --- projection ----------------------------------------------------------------------------


def _facility_row(session: Session, fid: str, at: datetime) -> RosterFacility:
    row = session.get(RosterFacility, fid)
    if row is None:
        row = RosterFacility(facility_id=fid, first_seen_at=at)
        session.add(row)
    return row


def project(session: Session, body: dict[str, Any]) -> None:
    """Fold one trail entry (its canonical body) into the roster tables."""
    etype = str(body.get("type") or "")
    if etype == ROSTER_IMPORTED:
        _project_import(session, body)
        return
    if not (etype.startswith(FACILITY_PREFIX) or etype == POOL_EVENT):
        return
    p = body.get("payload") or {}
    at = parse_utc(body.get("occurred_at")) or utcnow()
    version = int(body.get("aggregate_version") or 0)
    if etype == POOL_EVENT:
        fid = str(p.get("facility_id") or "")
        pid = str(p.get("pool_id") or body.get("aggregate_id") or "")
        if not fid or not pid:
            return
        fac = _facility_row(session, fid, at)
        fac.name = fac.name or p.get("facility_name")
        fac.kind = fac.kind or p.get("facility_kind")
        fac.state = fac.state or p.get("state")
        fac.municipality = fac.municipality or p.get("municipality")
        fac.operator_institution_id = fac.operator_institution_id or p.get(
            "operator_institution_id"
        )
        fac.status = fac.status or p.get("facility_status")
        pool = session.get(RosterPool, pid)
        if pool is None:
            pool = RosterPool(pool_id=pid, facility_id=fid)
            session.add(pool)
        elif pool.version > version:
            return
        pool.version = version
        pool.total = int(p.get("total") or 0)
        pool.occupied = int(p.get("occupied") or 0)
        pool.last_confirmed_at = parse_utc(p.get("last_confirmed_at"))
        session.flush()
        return
    fid = str(p.get("facility_id") or body.get("aggregate_id") or "")
    if not fid:
        return
    fac = _facility_row(session, fid, at)
    if fac.version > version:
        return
    fac.version = version
    for key, attr in (
        ("facility_name", "name"),
        ("kind", "kind"),
        ("operator_institution_id", "operator_institution_id"),
        ("state", "state"),
        ("municipality", "municipality"),
        ("specialization", "specialization"),
    ):
        if p.get(key):
            setattr(fac, attr, p[key])
    if isinstance(p.get("services"), list):
        fac.services = [str(s) for s in p["services"]]
    if p.get("status") and (p["status"] != fac.status or fac.status_changed_at is None):
        fac.status = p["status"]
        fac.status_changed_at = at
    reg = p.get("registration_status")
    if reg in REGISTRATION_STATUSES and reg != fac.registration_status:
        fac.registration_status = reg
        fac.registration_changed_at = at
    session.flush()


def _project_import(session: Session, body: dict[str, Any]) -> None:
    """Unfold a bulk roster import into the facility and pool entries it stands for."""
    payload = body.get("payload") or {}
    for f in payload.get("facilities") or []:
        facility = {**f, "facility_name": f.get("facility_name") or f.get("name")}
        project(
            session,
            {**body, "type": f"{FACILITY_PREFIX}imported", "payload": facility,
             "aggregate_id": f.get("facility_id"), "aggregate_version": 1},
        )  # fmt: skip
    for pool in payload.get("pools") or []:
        project(
            session,
            {**body, "type": POOL_EVENT, "payload": pool, "aggregate_id": pool.get("pool_id"),
             "aggregate_version": pool.get("version") or 1},
        )  # fmt: skip


def rebuild(session: Session) -> int:
    """Rebuild the projection from the trail; how many facilities it holds."""
    session.execute(delete(RosterPool))
    session.execute(delete(RosterFacility))
    session.flush()
    stmt = (
        select(col(AuditEntry.canonical))
        .where(
            col(AuditEntry.type).startswith(FACILITY_PREFIX, autoescape=True)
            | (col(AuditEntry.type) == POOL_EVENT)
            | (col(AuditEntry.type) == ROSTER_IMPORTED)
        )
        .order_by(col(AuditEntry.position))
    )
    for canonical in session.execute(stmt).scalars():
        project(session, json.loads(canonical))
    return len(list(session.execute(select(RosterFacility.facility_id)).scalars()))


# --- flags and the roster ----------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The thresholds flags are computed with (from settings, or given in tests)."""

    visit_interval: timedelta
    stale_after: timedelta

    @classmethod
    def from_settings(cls) -> Policy:
        s = get_settings()
        return cls(timedelta(days=s.visit_interval_days), timedelta(hours=s.stale_after_hours))


def _open_actions(actions: list[FollowUpAction]) -> list[FollowUpAction]:
    return [a for a in actions if a.completed_at is None]


def flags_of(
    fac: RosterFacility,
    pools: list[RosterPool],
    visits: list[Visit],
    actions: list[FollowUpAction],
    *,
    now: datetime,
    policy: Policy,
) -> list[str]:
    """The roster flags of one facility right now (never stored)."""
    flags: list[str] = []
    done = [v.done_on for v in visits if v.status == "done" and v.done_on]
    last = max(done) if done else None
    today = now.date()
    if last is None:
        flags.append("never_visited")
    since = last or as_utc(fac.first_seen_at).date()
    if fac.status != "closed" and today - since > policy.visit_interval:
        flags.append("visit_overdue")
    if fac.status == "active":  # only an active facility is offered: its beds must be current
        stamps = [as_utc(p.last_confirmed_at) if p.last_confirmed_at else None for p in pools]
        if not stamps or any(s is None or now - s > policy.stale_after for s in stamps):
            flags.append("capacity_not_confirmed")
    if fac.status == "closed":
        flags.append("closed")
    if fac.status == "active" and fac.registration_status != "registered":
        flags.append("unregistered_active")
    if any(a.due_on < today for a in _open_actions(actions)):
        flags.append("follow_up_overdue")
    return flags


def _columns(model: Any) -> list[Any]:
    return list(model.__table__.c)


def _by_facility(rows: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.facility_id, []).append(r)
    return out


def roster(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
    flag: str | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> list[dict[str, Any]]:
    """Every facility on the roster with its flags, filtered; never an address."""
    now = now or utcnow()
    policy = policy or Policy.from_settings()
    # Plain rows (attribute access, no ORM identity map): the roster reads every facility.
    stmt = select(*_columns(RosterFacility))
    if state:
        stmt = stmt.where(RosterFacility.state == state)
    if kind:
        stmt = stmt.where(RosterFacility.kind == kind)
    if status:
        stmt = stmt.where(RosterFacility.status == status)
    if registration_status:
        stmt = stmt.where(RosterFacility.registration_status == registration_status)
    facs = list(
        session.execute(
            stmt.order_by(RosterFacility.state, RosterFacility.name, RosterFacility.facility_id)
        )
    )
    pools = _by_facility(list(session.execute(select(*_columns(RosterPool)))))
    visits = _by_facility(list(session.execute(select(*_columns(Visit)))))
    actions = _by_facility(list(session.execute(select(*_columns(FollowUpAction)))))
    out = []
    for fac in facs:
        fid = fac.facility_id
        entry = roster_entry(
            fac,
            pools.get(fid, []),
            visits.get(fid, []),
            actions.get(fid, []),
            now=now,
            policy=policy,
        )
        if flag and flag not in entry["flags"]:
            continue
        out.append(entry)
    return out


def roster_entry(
    fac: RosterFacility,
    pools: list[RosterPool],
    visits: list[Visit],
    actions: list[FollowUpAction],
    *,
    now: datetime,
    policy: Policy,
) -> dict[str, Any]:
    """One line of the roster."""
    done = sorted(v.done_on for v in visits if v.status == "done" and v.done_on)
    planned = sorted(v.planned_for for v in visits if v.status == "planned" and v.planned_for)
    stamps = [as_utc(p.last_confirmed_at) for p in pools if p.last_confirmed_at]
    confirmed = min(stamps) if stamps and len(stamps) == len(pools) else None
    open_actions = _open_actions(actions)
    flags = flags_of(fac, pools, visits, actions, now=now, policy=policy)
    return {
        "facility_id": fac.facility_id,
        "name": fac.name or "S.I.",
        "kind": fac.kind,
        "operator_institution_id": fac.operator_institution_id,
        "state": fac.state,
        "municipality": fac.municipality,
        "status": fac.status,
        "registration_status": fac.registration_status,
        "beds": sum(p.total for p in pools),
        "occupied": sum(p.occupied for p in pools),
        "capacity_confirmed_at": confirmed,
        "last_visit_on": done[-1] if done else None,
        "visits_done": len(done),
        "next_visit_planned_for": planned[0] if planned else None,
        "open_actions": len(open_actions),
        "overdue_actions": sum(1 for a in open_actions if a.due_on < now.date()),
        "flags": flags,
        "flag_labels": [FLAGS[f] for f in flags],
    }


def flag_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many facilities carry each flag (computed from the rows)."""
    return {f: sum(1 for e in entries if f in e["flags"]) for f in FLAGS}


def get_roster_facility(session: Session, facility_id: str) -> RosterFacility:
    fac = session.get(RosterFacility, facility_id)
    if fac is None:
        raise FacilityNotOnRoster()
    return fac


def facility_detail(session: Session, facility_id: str) -> dict[str, Any]:
    """A roster line with its visits and their follow-up actions."""
    fac = get_roster_facility(session, facility_id)
    pools = list(
        session.execute(select(RosterPool).where(RosterPool.facility_id == facility_id)).scalars()
    )
    visits = list_visits(session, facility_id=facility_id)
    actions = list(
        session.execute(
            select(FollowUpAction).where(FollowUpAction.facility_id == facility_id)
        ).scalars()
    )
    entry = roster_entry(fac, pools, visits, actions, now=utcnow(), policy=Policy.from_settings())
    by_visit = _by_visit(actions)
    entry["visits"] = [visit_view(v, by_visit.get(v.id, [])) for v in visits]
    return entry


def _by_visit(actions: list[FollowUpAction]) -> dict[str, list[FollowUpAction]]:
    out: dict[str, list[FollowUpAction]] = {}
    for a in sorted(actions, key=lambda a: (a.due_on, a.created_at)):
        out.setdefault(a.visit_id, []).append(a)
    return out


# --- visits ------------------------------------------------------------------------------


def action_view(a: FollowUpAction) -> dict[str, Any]:
    return {
        "id": a.id,
        "visit_id": a.visit_id,
        "facility_id": a.facility_id,
        "description": a.description,
        "due_on": a.due_on,
        "completed_at": as_utc(a.completed_at) if a.completed_at else None,
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
        stmt = stmt.where(Visit.facility_id == facility_id)
    if status:
        stmt = stmt.where(Visit.status == status)
    return list(
        session.execute(stmt.order_by(Visit.facility_id, Visit.created_at, Visit.id)).scalars()
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
            .where(FollowUpAction.visit_id == visit_id)
            .order_by(FollowUpAction.due_on, FollowUpAction.created_at)
        ).scalars()
    )


def _emit(
    session: Session, principal: Principal, *, type: str, aggregate_id: str, version: int,
    payload: dict[str, Any], aggregate_type: str = "visit",
) -> None:  # fmt: skip
    from audit.database import outbox
    from audit.service import record_event

    event = Event(
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        actor=principal.sub,
        institution_id=principal.institution_id,
        payload=payload,
    )
    outbox.add(session, event)
    record_event(session, event)


def _visit_payload(v: Visit) -> dict[str, Any]:
    return {
        "visit_id": v.id,
        "facility_id": v.facility_id,
        "status": v.status,
        "planned_for": v.planned_for.isoformat() if v.planned_for else None,
        "done_on": v.done_on.isoformat() if v.done_on else None,
        "team_size": len(v.team),
        "findings": v.findings,
    }


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
    _emit(
        session,
        principal,
        type=f"audit.visit.{visit.status}",
        aggregate_id=visit.id,
        version=visit.version,
        payload=_visit_payload(visit),
    )
    for description, due_on in actions:
        add_action(
            session, principal=principal, visit=visit, description=description, due_on=due_on
        )
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
    _save_visit(session, principal, visit, "audit.visit.done")
    for description, due_on in actions:
        add_action(
            session, principal=principal, visit=visit, description=description, due_on=due_on
        )
    return visit


def _save_visit(session: Session, principal: Principal, visit: Visit, event_type: str) -> None:
    """A changed visit: a new version, written, and its event on the trail."""
    visit.updated_at = utcnow()
    visit.version += 1
    session.add(visit)
    session.flush()
    _emit(
        session,
        principal,
        type=event_type,
        aggregate_id=visit.id,
        version=visit.version,
        payload=_visit_payload(visit),
    )


def cancel_visit(session: Session, *, principal: Principal, visit_id: str, reason: str) -> Visit:
    visit = get_visit(session, visit_id)
    if visit.status != "planned":
        raise VisitConflict(
            "Sólo se cancela una visita programada.", extra={"visit_status": visit.status}
        )
    visit.status = "cancelled"
    visit.findings = reason
    _save_visit(session, principal, visit, "audit.visit.cancelled")
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
    _emit(
        session,
        principal,
        type="audit.action.added",
        aggregate_type="follow_up_action",
        aggregate_id=action.id,
        version=1,
        payload={
            "action_id": action.id,
            "visit_id": visit.id,
            "facility_id": visit.facility_id,
            "description": description,
            "due_on": due_on.isoformat(),
        },
    )
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
    _emit(
        session,
        principal,
        type="audit.action.completed",
        aggregate_type="follow_up_action",
        aggregate_id=action.id,
        version=2,
        payload={
            "action_id": action.id,
            "visit_id": action.visit_id,
            "facility_id": action.facility_id,
            "due_on": action.due_on.isoformat(),
            "late": action.completed_at.date() > action.due_on,
            "note": note,
        },
    )
    return action

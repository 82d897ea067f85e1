"""SEGOB's roster: every facility of the projection (``audit.projection``) with its flags.

What a flag is computed from is kept on the facility's roster row (``audit.roster_state``,
ADR 0027), so a page is one indexed select, a flag filters in SQL and the flag counts are one
``COUNT`` per flag in a single query. A flag that falls due as time passes compares the day or
instant the row keeps with now, in SQL. The roster never holds an address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select
from sqlmodel import Session, col

from audit.exceptions import FacilityNotOnRoster
from audit.models import AuditEntry, FollowUpAction, RosterFacility, RosterStay
from audit.visits import list_visits, visit_view
from services.clock import as_utc, utcnow
from services.pages import after, decode_cursor, split_page
from services.settings import get_settings

REGISTRATION_PREFIX = "capacity.facility.registration_"
FLAGS: dict[str, str] = {
    "never_visited": "Nunca visitada",
    "visit_overdue": "Visita vencida",
    "capacity_not_confirmed": "Capacidad sin confirmar recientemente",
    "closed": "Cerrada",
    "unregistered_active": "Activa sin registro",
    "follow_up_overdue": "Acciones de seguimiento vencidas",
    "stay_limit_near": "Estancias cerca de su máximo",
    "stay_over_limit": "Estancias que rebasan su máximo sin prórroga",
    "registered_with_observations": "Registrada con observaciones pendientes",
    "observations_overdue": "Plazo de observaciones vencido",
}
# How many days before a stay's maximum (plus its extensions) the roster warns (ADR 0022).
STAY_WARNING_DAYS = 14


@dataclass(frozen=True)
class Policy:
    """The thresholds flags are computed with (from settings, or given in tests)."""

    visit_interval: timedelta
    stale_after: timedelta

    @classmethod
    def from_settings(cls) -> Policy:
        s = get_settings()
        return cls(timedelta(days=s.visit_interval_days), timedelta(hours=s.stale_after_hours))


F = RosterFacility


@dataclass(frozen=True)
class _When:
    """The moment a roster is read, as the bounds its flags compare with."""

    now: datetime
    today: date
    visit_cutoff: date  # a facility last visited (or first seen) before this day is overdue
    stale_cutoff: datetime  # a pool confirmed before this instant is not current
    warn_until: datetime  # a stay passing its maximum by then is near it

    @classmethod
    def at(cls, now: datetime, policy: Policy) -> _When:
        today = now.date()
        return cls(
            now=now,
            today=today,
            visit_cutoff=today - policy.visit_interval,
            stale_cutoff=now - policy.stale_after,
            # near: no more than STAY_WARNING_DAYS whole days left (ADR 0022)
            warn_until=now + timedelta(days=STAY_WARNING_DAYS + 1),
        )


def _stays_where(w: _When, *, over: bool) -> list[ColumnElement[bool]]:
    """The open stays of the outer facility row past their maximum (``over``) or near it."""
    at = col(RosterStay.over_at)
    bound = [at <= w.now] if over else [at > w.now, at <= w.warn_until]
    is_open = cast(ColumnElement[bool], col(RosterStay.open))
    return [col(RosterStay.facility_id) == col(F.facility_id), is_open, *bound]


def _stays_near(w: _When) -> ColumnElement[bool]:
    # The row's earliest and latest instants decide most facilities without the subquery.
    first, last = col(F.stay_over_first_at), col(F.stay_over_last_at)
    return and_(
        last > w.now,
        first <= w.warn_until,
        or_(first > w.now, exists().where(*_stays_where(w, over=False))),
    )


def _conditions(w: _When) -> dict[str, ColumnElement[bool]]:
    """Each flag as a condition on the facility's roster row, at ``w``."""
    status = func.coalesce(col(F.status), "")
    registered_pending = and_(col(F.registration_status) == "registered", col(F.pending_count) > 0)
    return {
        "never_visited": col(F.last_visit_on).is_(None),
        "visit_overdue": and_(status != "closed", col(F.visit_since_on) < w.visit_cutoff),
        "capacity_not_confirmed": and_(
            status == "active",
            or_(
                col(F.pool_count) == 0,
                col(F.capacity_confirmed_at).is_(None),
                col(F.capacity_confirmed_at) < w.stale_cutoff,
            ),
        ),
        "closed": status == "closed",
        "unregistered_active": and_(status == "active", col(F.registration_status) != "registered"),
        "follow_up_overdue": col(F.action_due_on) < w.today,
        "stay_limit_near": _stays_near(w),
        "stay_over_limit": col(F.stay_over_first_at) <= w.now,
        "registered_with_observations": registered_pending,
        "observations_overdue": and_(registered_pending, col(F.registration_due_on) < w.today),
    }


def _counted(gate: ColumnElement[bool], model: Any, *where: ColumnElement[bool]) -> Any:
    """How many rows of ``model`` match (a correlated count), asked only where ``gate``."""
    n = select(func.count()).select_from(model).where(*where).correlate(F).scalar_subquery()
    return case((gate, n), else_=0)


def _lines(w: _When) -> Any:
    """The roster's lines at ``w``: each facility row with its flags and due counts."""
    conds = _conditions(w)
    overdue = _counted(
        conds["follow_up_overdue"],
        FollowUpAction,
        col(FollowUpAction.facility_id) == col(F.facility_id),
        col(FollowUpAction.completed_at).is_(None),
        col(FollowUpAction.due_on) < w.today,
    )
    return select(
        *F.__table__.c,  # type: ignore[attr-defined]
        *(case((cond, True), else_=False).label(f"flag_{name}") for name, cond in conds.items()),
        overdue.label("overdue_actions"),
        _counted(conds["stay_limit_near"], RosterStay, *_stays_where(w, over=False)).label(
            "stays_near_limit"
        ),
        _counted(conds["stay_over_limit"], RosterStay, *_stays_where(w, over=True)).label(
            "stays_over_limit"
        ),
    )


def _filters(
    w: _When,
    state: str | None,
    kind: str | None,
    status: str | None,
    registration_status: str | None,
    flag: str | None = None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    for column, value in (
        (F.state, state),
        (F.kind, kind),
        (F.status, status),
        (F.registration_status, registration_status),
    ):
        if value:
            where.append(col(column) == value)
    if flag:
        where.append(_conditions(w).get(flag, false()))
    return where


# The roster's order, one key per facility: state, name (S.I. first), id.
_ORDER: tuple[Any, ...] = (
    col(F.state),
    func.coalesce(col(F.name), ""),
    col(F.facility_id),
)


def _order_key(row: Any) -> tuple[str, str, str]:
    return (row.state or "", row.name or "", row.facility_id)


def _entry(row: Any) -> dict[str, Any]:
    """One line of the roster from a row of ``_lines``."""
    flags = [name for name in FLAGS if getattr(row, f"flag_{name}")]
    return {
        "facility_id": row.facility_id,
        "name": row.name or "S.I.",
        "kind": row.kind,
        "operator_institution_id": row.operator_institution_id,
        "state": row.state,
        "municipality": row.municipality,
        "status": row.status,
        "registration_status": row.registration_status,
        "registration_pending": list(row.registration_pending or []),
        "registration_due_on": row.registration_due_on,
        "beds": row.beds,
        "occupied": row.occupied,
        "capacity_confirmed_at": (
            as_utc(row.capacity_confirmed_at) if row.capacity_confirmed_at else None
        ),
        "last_visit_on": row.last_visit_on,
        "visits_done": row.visits_done,
        "next_visit_planned_for": row.next_visit_planned_for,
        "open_actions": row.open_actions,
        "overdue_actions": int(row.overdue_actions or 0),
        "max_stay_days": row.max_stay_days,
        "stays_near_limit": int(row.stays_near_limit or 0),
        "stays_over_limit": int(row.stays_over_limit or 0),
        "flags": flags,
        "flag_labels": [FLAGS[f] for f in flags],
    }


def roster_page(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
    flag: str | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the roster in its order (state, name, id), starting after ``cursor``,
    and the cursor of the next page (``None`` on the last): one select of ``limit + 1``
    rows, the flag filter included."""
    w = _When.at(now or utcnow(), policy or Policy.from_settings())
    stmt = _lines(w).where(*_filters(w, state, kind, status, registration_status, flag))
    if cursor:
        stmt = stmt.where(after(_ORDER, decode_cursor(cursor, 3)))
    rows = list(session.execute(stmt.order_by(*_ORDER).limit(limit + 1)))
    page, next_cursor = split_page(rows, limit, _order_key)
    return [_entry(r) for r in page], next_cursor


def roster_total(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
) -> int:
    """How many facilities the filters select (one ``COUNT``; flags are not counted)."""
    w = _When.at(utcnow(), Policy.from_settings())  # no time-based filter is asked for
    stmt = (
        select(func.count())
        .select_from(F)
        .where(*_filters(w, state, kind, status, registration_status))
    )
    return int(session.execute(stmt).scalar_one())


def count_flags(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
    flag: str | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
) -> dict[str, int]:
    """How many of the filtered facilities carry each flag: one query, a ``COUNT`` each."""
    w = _When.at(now or utcnow(), policy or Policy.from_settings())
    counts = [func.count(case((cond, 1))).label(name) for name, cond in _conditions(w).items()]
    stmt = (
        select(*counts)
        .select_from(F)
        .where(*_filters(w, state, kind, status, registration_status, flag))
    )
    row = session.execute(stmt).one()
    return {name: int(getattr(row, name) or 0) for name in FLAGS}


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
    w = _When.at(now or utcnow(), policy or Policy.from_settings())
    stmt = _lines(w).where(*_filters(w, state, kind, status, registration_status, flag))
    return [_entry(r) for r in session.execute(stmt.order_by(*_ORDER))]


def flag_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these roster lines carry each flag."""
    return {f: sum(1 for e in entries if f in e["flags"]) for f in FLAGS}


def facility_detail(session: Session, facility_id: str) -> dict[str, Any]:
    """A roster line with its visits and their follow-up actions."""
    w = _When.at(utcnow(), Policy.from_settings())
    row = session.execute(_lines(w).where(col(F.facility_id) == facility_id)).first()
    if row is None:
        raise FacilityNotOnRoster()
    entry = _entry(row)
    visits = list_visits(session, facility_id=facility_id)
    actions = list(
        session.execute(
            select(FollowUpAction).where(col(FollowUpAction.facility_id) == facility_id)
        ).scalars()
    )
    by_visit = _by_visit(actions)
    entry["visits"] = [visit_view(v, by_visit.get(v.id, [])) for v in visits]
    entry["registration_history"] = registration_history(session, facility_id)
    return entry


def registration_history(session: Session, facility_id: str) -> list[dict[str, Any]]:
    """Every submission and review of the facility as the trail holds it, each review with
    its checklist result (met or not, item by item) and any deadline for pending items."""
    rows = session.execute(
        select(col(AuditEntry.canonical), col(AuditEntry.occurred_at))
        .where(
            col(AuditEntry.facility_id) == facility_id,
            col(AuditEntry.type).startswith(REGISTRATION_PREFIX, autoescape=True),
        )
        .order_by(col(AuditEntry.position))
    ).all()
    out = []
    for canonical, at in rows:
        body = json.loads(canonical)
        p = body.get("payload") or {}
        out.append(
            {
                "type": str(body.get("type", ""))[len(REGISTRATION_PREFIX) :],
                "registration_status": p.get("registration_status"),
                "outcome": p.get("outcome"),
                "unmet": list(p.get("unmet") or []),
                "checklist": list(p.get("checklist") or []),
                "pending": list(p.get("pending") or []),
                "due_on": p.get("due_on"),
                "at": as_utc(at),
            }
        )
    return out


def _by_visit(actions: list[FollowUpAction]) -> dict[str, list[FollowUpAction]]:
    out: dict[str, list[FollowUpAction]] = {}
    for a in sorted(actions, key=lambda a: (a.due_on, a.created_at)):
        out.setdefault(a.visit_id, []).append(a)
    return out

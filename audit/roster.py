"""SEGOB's roster: every facility of the projection (``audit.projection``) with its flags.

What a flag is computed from is kept on the facility's roster row (``audit.roster_state``,
ADR 0027), so a page is one indexed select, a flag filters in SQL and the flag counts are one
``COUNT`` per flag in a single query. A flag that falls due as time passes compares the day or
instant the row keeps with now, in SQL. The roster never holds an address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Integer,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlmodel import Session, col

from audit.exceptions import FacilityNotOnRoster
from audit.models import AuditEntry, FollowUpAction, RosterFacility, RosterStay
from audit.visits import list_visits, visit_view
from services.clock import as_utc, as_utc_or_none, utcnow
from services.pages import after, page_key, split_page
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


class _At:
    """The moment a roster is read, as the bounds its flags compare with: bound parameters,
    so the roster's statements are built once and SQLAlchemy compiles them once."""

    now = bindparam("now", type_=DateTime(timezone=True))
    today = bindparam("today", type_=Date())
    # a facility last visited (or first seen) before this day is overdue for a visit
    visit_cutoff = bindparam("visit_cutoff", type_=Date())
    # a pool confirmed before this instant is not current
    stale_cutoff = bindparam("stale_cutoff", type_=DateTime(timezone=True))
    # a stay passing its maximum by this instant is near it
    warn_until = bindparam("warn_until", type_=DateTime(timezone=True))


def _moment(now: datetime | None, policy: Policy | None) -> dict[str, Any]:
    """The values of ``_At``'s parameters at ``now`` (default: now) under ``policy``."""
    now = now or utcnow()
    policy = policy or Policy.from_settings()
    today = now.date()
    return {
        "now": now,
        "today": today,
        "visit_cutoff": today - policy.visit_interval,
        "stale_cutoff": now - policy.stale_after,
        # near: no more than STAY_WARNING_DAYS whole days left (ADR 0022)
        "warn_until": now + timedelta(days=STAY_WARNING_DAYS + 1),
    }


def _stays_where(*, over: bool) -> list[ColumnElement[bool]]:
    """The open stays of the outer facility row past their maximum (``over``) or near it."""
    at = col(RosterStay.over_at)
    bound = [at <= _At.now] if over else [at > _At.now, at <= _At.warn_until]
    is_open = cast(ColumnElement[bool], col(RosterStay.open))
    return [col(RosterStay.facility_id) == col(F.facility_id), is_open, *bound]


def _stays_near() -> ColumnElement[bool]:
    # The row's earliest and latest instants decide most facilities without the subquery.
    first, last = col(F.stay_over_first_at), col(F.stay_over_last_at)
    return and_(
        last > _At.now,
        first <= _At.warn_until,
        or_(first > _At.now, exists().where(*_stays_where(over=False))),
    )


@cache
def _conditions() -> dict[str, ColumnElement[bool]]:
    """Each flag as a condition on the facility's roster row, at the moment ``_At``."""
    status = func.coalesce(col(F.status), "")
    registered_pending = and_(col(F.registration_status) == "registered", col(F.pending_count) > 0)
    return {
        "never_visited": col(F.last_visit_on).is_(None),
        "visit_overdue": and_(status != "closed", col(F.visit_since_on) < _At.visit_cutoff),
        "capacity_not_confirmed": and_(
            status == "active",
            or_(
                col(F.pool_count) == 0,
                col(F.capacity_confirmed_at).is_(None),
                col(F.capacity_confirmed_at) < _At.stale_cutoff,
            ),
        ),
        "closed": status == "closed",
        "unregistered_active": and_(status == "active", col(F.registration_status) != "registered"),
        "follow_up_overdue": col(F.action_due_on) < _At.today,
        "stay_limit_near": _stays_near(),
        "stay_over_limit": col(F.stay_over_first_at) <= _At.now,
        "registered_with_observations": registered_pending,
        "observations_overdue": and_(registered_pending, col(F.registration_due_on) < _At.today),
    }


def _counted(gate: ColumnElement[bool], model: Any, *where: ColumnElement[bool]) -> Any:
    """How many rows of ``model`` match (a correlated count), asked only where ``gate``."""
    n = select(func.count()).select_from(model).where(*where).correlate(F).scalar_subquery()
    return case((gate, n), else_=0)


# What a line shows of the facility's row.
_SHOWN = ("facility_id", "name", "kind", "operator_institution_id", "state", "municipality",
          "status", "registration_status", "registration_pending", "registration_due_on", "beds",
          "occupied", "capacity_confirmed_at", "last_visit_on", "visits_done",
          "next_visit_planned_for", "open_actions", "max_stay_days")  # fmt: skip


@cache
def _lines() -> Any:
    """The roster's lines: each facility's shown columns, its flags and due counts."""
    conds = _conditions()
    overdue = _counted(
        conds["follow_up_overdue"],
        FollowUpAction,
        col(FollowUpAction.facility_id) == col(F.facility_id),
        col(FollowUpAction.completed_at).is_(None),
        col(FollowUpAction.due_on) < _At.today,
    )
    table = F.__table__  # type: ignore[attr-defined]
    return select(
        *(table.c[name] for name in _SHOWN),
        *(case((conds[name], True), else_=False).label(f"flag_{name}") for name in FLAGS),
        overdue.label("overdue_actions"),
        _counted(conds["stay_limit_near"], RosterStay, *_stays_where(over=False)).label(
            "stays_near_limit"
        ),
        _counted(conds["stay_over_limit"], RosterStay, *_stays_where(over=True)).label(
            "stays_over_limit"
        ),
    )


@cache
def _where(chosen: tuple[str, ...], flag: str | None) -> tuple[ColumnElement[bool], ...]:
    """The conditions of these filters (their values bound as ``filter_<name>``)."""
    where = [col(getattr(F, name)) == bindparam(f"filter_{name}") for name in chosen]
    if flag:
        where.append(_conditions().get(flag, false()))
    return tuple(where)


def _filters(
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
    flag: str | None = None,
) -> tuple[tuple[ColumnElement[bool], ...], dict[str, Any]]:
    """The roster's filters (each ``None``: any), a flag among them: the conditions, the
    same objects for the same filters so the statements built on them are built once, and
    the values they are bound to."""
    values = {"state": state, "kind": kind, "status": status,
              "registration_status": registration_status}  # fmt: skip
    chosen = tuple(name for name, value in values.items() if value)
    return _where(chosen, flag), {f"filter_{name}": values[name] for name in chosen}


# The roster's order, one key per facility: state, name (S.I. first), id.
_ORDER: tuple[Any, ...] = (
    col(F.state),
    func.coalesce(col(F.name), ""),
    col(F.facility_id),
)


def _order_key(row: Any) -> tuple[str, str, str]:
    return (row.state or "", row.name or "", row.facility_id)


_COUNTS = ("overdue_actions", "stays_near_limit", "stays_over_limit")
# The names of a ``_lines`` row's values, in order.
_NAMES = (*_SHOWN, *(f"flag_{name}" for name in FLAGS), *_COUNTS)


def _entry(row: Any) -> dict[str, Any]:
    """One line of the roster from a row of ``_lines`` (its values by position: a page
    builds a hundred of these)."""
    line = dict(zip(_NAMES, row, strict=True))
    flags = [name for name in FLAGS if line.pop(f"flag_{name}")]
    confirmed = line["capacity_confirmed_at"]
    line.update(
        name=line["name"] or "S.I.",
        registration_pending=list(line["registration_pending"] or []),
        capacity_confirmed_at=as_utc_or_none(confirmed),
        flags=flags,
        flag_labels=[FLAGS[f] for f in flags],
    )
    for key in _COUNTS:
        line[key] = int(line[key] or 0)
    return line


# The sort key a page starts after (bound from the cursor).
_AFTER = ("after_state", "after_name", "after_id")


@cache
def _page_statement(where: tuple[ColumnElement[bool], ...], from_cursor: bool) -> Any:
    """A page of lines (``page_rows`` of them), from the start or after ``_AFTER``."""
    stmt = _lines().where(*where)
    if from_cursor:
        stmt = stmt.where(after(_ORDER, tuple(bindparam(name) for name in _AFTER)))
    return stmt.order_by(*_ORDER).limit(bindparam("page_rows", type_=Integer()))


@cache
def _count_statement(where: tuple[ColumnElement[bool], ...]) -> Any:
    return select(func.count()).select_from(F).where(*where)


@cache
def _flags_statement(where: tuple[ColumnElement[bool], ...]) -> Any:
    counts = [func.count(case((cond, 1))).label(name) for name, cond in _conditions().items()]
    return select(*counts).select_from(F).where(*where)


def roster_page(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    now: datetime | None = None,
    policy: Policy | None = None,
    **filters: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the roster in its order (state, name, id), starting after ``cursor``,
    and the cursor of the next page (``None`` on the last): one select of ``limit + 1``
    rows, the flag filter included (``filters``: those of ``_filters``)."""
    where, values = _filters(**filters)
    values.update(_moment(now, policy), page_rows=limit + 1)
    if cursor:
        key = page_key(cursor, str, str, str)  # the roster's key is three strings
        assert key is not None
        values.update(zip(_AFTER, key, strict=True))
    rows = list(session.execute(_page_statement(where, bool(cursor)), values))
    page, next_cursor = split_page(rows, limit, _order_key)
    return [_entry(r) for r in page], next_cursor


def roster_total(
    session: Session,
    **filters: str | None,
) -> int:
    """How many facilities the filters select (one ``COUNT``; a ``flag`` is not counted)."""
    filters.pop("flag", None)
    where, values = _filters(**filters)
    return int(session.execute(_count_statement(where), values).scalar_one())


def count_flags(
    session: Session,
    *,
    now: datetime | None = None,
    policy: Policy | None = None,
    **filters: str | None,
) -> dict[str, int]:
    """How many of the filtered facilities carry each flag: one query, a ``COUNT`` each."""
    where, values = _filters(**filters)
    row = session.execute(_flags_statement(where), {**values, **_moment(now, policy)}).one()
    return {name: int(getattr(row, name) or 0) for name in FLAGS}


def roster(
    session: Session,
    *,
    now: datetime | None = None,
    policy: Policy | None = None,
    **filters: str | None,
) -> list[dict[str, Any]]:
    """Every facility on the roster with its flags, filtered; never an address."""
    where, values = _filters(**filters)
    stmt = _lines().where(*where).order_by(*_ORDER)
    return [_entry(r) for r in session.execute(stmt, {**values, **_moment(now, policy)})]


def flag_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many of these roster lines carry each flag."""
    return {f: sum(1 for e in entries if f in e["flags"]) for f in FLAGS}


def facility_detail(session: Session, facility_id: str) -> dict[str, Any]:
    """A roster line with its visits and their follow-up actions."""
    stmt = _lines().where(col(F.facility_id) == facility_id)
    row = session.execute(stmt, _moment(None, None)).first()
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

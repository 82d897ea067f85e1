"""SEGOB's roster: every facility of the projection (``audit.projection``) with its flags.

Flags are computed on read, from the facility, its pools, visits and follow-up actions;
the roster never holds an address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, tuple_
from sqlmodel import Session, col

from audit.models import AuditEntry, FollowUpAction, RosterFacility, RosterPool, RosterStay, Visit
from audit.projection import get_roster_facility
from audit.visits import list_visits, visit_view
from services.clock import as_utc, utcnow
from services.pages import decode_cursor, encode_cursor
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


def stay_counts(fac: RosterFacility, stays: list[RosterStay], *, now: datetime) -> tuple[int, int]:
    """Open stays near their limit and past it: the facility's ``max_stay_days`` plus each
    stay's extensions (none without a recorded maximum)."""
    if fac.max_stay_days is None:
        return 0, 0
    near = over = 0
    for stay in stays:
        if not stay.open:
            continue
        days = (now - as_utc(stay.admitted_at)).days
        left = fac.max_stay_days + stay.extended_days - days
        if left < 0:
            over += 1
        elif left <= STAY_WARNING_DAYS:
            near += 1
    return near, over


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
    stays: list[RosterStay] | None = None,
    stay_totals: tuple[int, int] | None = None,
) -> list[str]:
    """The roster flags of one facility right now (never stored); ``stay_totals`` are its
    ``stay_counts`` when the caller has them already."""
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
    near, over = stay_totals or stay_counts(fac, stays or [], now=now)
    if near:
        flags.append("stay_limit_near")
    if over:
        flags.append("stay_over_limit")
    if fac.registration_status == "registered" and fac.registration_pending:
        flags.append("registered_with_observations")
        if fac.registration_due_on is not None and fac.registration_due_on < today:
            flags.append("observations_overdue")
    return flags


def _columns(model: Any) -> list[Any]:
    return list(model.__table__.c)


def _by_facility(rows: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in rows:
        out.setdefault(r.facility_id, []).append(r)
    return out


def _filtered(
    state: str | None, kind: str | None, status: str | None, registration_status: str | None
) -> Any:
    stmt = select(*_columns(RosterFacility))
    if state:
        stmt = stmt.where(col(RosterFacility.state) == state)
    if kind:
        stmt = stmt.where(col(RosterFacility.kind) == kind)
    if status:
        stmt = stmt.where(col(RosterFacility.status) == status)
    if registration_status:
        stmt = stmt.where(col(RosterFacility.registration_status) == registration_status)
    return stmt


# The roster's order, one key per facility: state, name (S.I. first), id.
_ORDER = (
    col(RosterFacility.state),
    func.coalesce(col(RosterFacility.name), ""),
    col(RosterFacility.facility_id),
)


def _order_key(fac: Any) -> tuple[str, str, str]:
    return (fac.state or "", fac.name or "", fac.facility_id)


def _entries(
    session: Session,
    facs: list[Any],
    ids: list[str] | None,
    *,
    flag: str | None,
    now: datetime,
    policy: Policy,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each facility row with its roster line (those carrying ``flag``, if given), reading
    the pools, visits, actions and open stays of ``ids`` (of every facility: ``None``)."""

    def related(model: Any, *where: Any) -> dict[str, list[Any]]:
        stmt = select(*_columns(model)).where(*where)
        if ids is not None:
            stmt = stmt.where(col(model.facility_id).in_(ids))
        return _by_facility(list(session.execute(stmt)))

    pools = related(RosterPool)
    visits = related(Visit)
    actions = related(FollowUpAction)
    stays = related(RosterStay, col(RosterStay.open))
    for fac in facs:
        fid = fac.facility_id
        entry = roster_entry(
            cast(RosterFacility, fac),  # a plain row with the same attributes
            pools.get(fid, []),
            visits.get(fid, []),
            actions.get(fid, []),
            now=now,
            policy=policy,
            stays=stays.get(fid, []),
        )
        if not flag or flag in entry["flags"]:
            yield fac, entry


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
    and the cursor of the next page (``None`` on the last). A page reads its own
    facilities and their pools, visits, actions and stays, never the whole roster; with
    ``flag`` it reads on in batches until the page is full."""
    now = now or utcnow()
    policy = policy or Policy.from_settings()
    after = decode_cursor(cursor, 3) if cursor else None
    base = _filtered(state, kind, status, registration_status).order_by(*_ORDER)
    batch = limit + 1 if not flag else max(4 * (limit + 1), 200)
    out: list[dict[str, Any]] = []
    last_keys: list[tuple[str, str, str]] = []
    while True:
        stmt = base if after is None else base.where(tuple_(*_ORDER) > tuple_(*after))
        facs = list(session.execute(stmt.limit(batch)))
        if not facs:
            break
        ids = [f.facility_id for f in facs]
        for fac, entry in _entries(session, facs, ids, flag=flag, now=now, policy=policy):
            out.append(entry)
            last_keys.append(_order_key(fac))
            if len(out) > limit:
                return out[:limit], encode_cursor(last_keys[limit - 1])
        if len(facs) < batch:
            break
        after = _order_key(facs[-1])
    return out, None


def roster_total(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    registration_status: str | None = None,
) -> int:
    """How many facilities the filters select (one ``COUNT``; flags are not counted)."""
    stmt = _filtered(state, kind, status, registration_status).subquery()
    return int(session.execute(select(func.count()).select_from(stmt)).scalar_one())


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
    stmt = _filtered(state, kind, status, registration_status)
    facs = list(session.execute(stmt.order_by(*_ORDER)))
    return [entry for _, entry in _entries(session, facs, None, flag=flag, now=now, policy=policy)]


def roster_entry(
    fac: RosterFacility,
    pools: list[RosterPool],
    visits: list[Visit],
    actions: list[FollowUpAction],
    *,
    now: datetime,
    policy: Policy,
    stays: list[RosterStay] | None = None,
) -> dict[str, Any]:
    """One line of the roster."""
    done = sorted(v.done_on for v in visits if v.status == "done" and v.done_on)
    planned = sorted(v.planned_for for v in visits if v.status == "planned" and v.planned_for)
    stamps = [as_utc(p.last_confirmed_at) for p in pools if p.last_confirmed_at]
    confirmed = min(stamps) if stamps and len(stamps) == len(pools) else None
    open_actions = _open_actions(actions)
    near, over = stay_counts(fac, stays or [], now=now)
    flags = flags_of(
        fac, pools, visits, actions, now=now, policy=policy, stays=stays, stay_totals=(near, over)
    )
    return {
        "facility_id": fac.facility_id,
        "name": fac.name or "S.I.",
        "kind": fac.kind,
        "operator_institution_id": fac.operator_institution_id,
        "state": fac.state,
        "municipality": fac.municipality,
        "status": fac.status,
        "registration_status": fac.registration_status,
        "registration_pending": list(fac.registration_pending or []),
        "registration_due_on": fac.registration_due_on,
        "beds": sum(p.total for p in pools),
        "occupied": sum(p.occupied for p in pools),
        "capacity_confirmed_at": confirmed,
        "last_visit_on": done[-1] if done else None,
        "visits_done": len(done),
        "next_visit_planned_for": planned[0] if planned else None,
        "open_actions": len(open_actions),
        "overdue_actions": sum(1 for a in open_actions if a.due_on < now.date()),
        "max_stay_days": fac.max_stay_days,
        "stays_near_limit": near,
        "stays_over_limit": over,
        "flags": flags,
        "flag_labels": [FLAGS[f] for f in flags],
    }


def flag_counts(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many facilities carry each flag (computed from the rows)."""
    return {f: sum(1 for e in entries if f in e["flags"]) for f in FLAGS}


def facility_detail(session: Session, facility_id: str) -> dict[str, Any]:
    """A roster line with its visits and their follow-up actions."""
    fac = get_roster_facility(session, facility_id)
    pools = list(
        session.execute(
            select(RosterPool).where(col(RosterPool.facility_id) == facility_id)
        ).scalars()
    )
    visits = list_visits(session, facility_id=facility_id)
    actions = list(
        session.execute(
            select(FollowUpAction).where(col(FollowUpAction.facility_id) == facility_id)
        ).scalars()
    )
    stays = list(
        session.execute(
            select(RosterStay).where(
                col(RosterStay.facility_id) == facility_id, col(RosterStay.open)
            )
        ).scalars()
    )
    entry = roster_entry(
        fac, pools, visits, actions, now=utcnow(), policy=Policy.from_settings(), stays=stays
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

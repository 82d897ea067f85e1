"""What a roster line needs of a facility's pools, visits, follow-up actions and stays, kept
on its ``roster_facility`` row (ADR 0027).

``refresh`` recomputes those columns for some facilities with one grouped read per table
(500 facilities at a time); the projection calls it when capacity's or referral's events
change a facility, a pool or a stay, and ``audit.visits`` when a visit or an action does.
Nothing here depends on the time of day: what can fall due is kept as the day or instant it
does (``visit_since_on``, ``action_due_on``, ``stay_over_*``, ``RosterStay.over_at``) and
``audit.roster`` compares it with now when the roster is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlmodel import Session, col

from audit.models import FollowUpAction, RosterFacility, RosterPool, RosterStay, Visit
from services.clock import as_utc, as_utc_or_none

PARTS = frozenset({"pools", "visits", "actions", "stays"})
CHUNK = 500


def chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in slices of ``CHUNK``: one ``IN`` query each, not one query per id."""
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def existing(session: Session, column: Any, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` ``column`` already holds (one query per ``CHUNK``)."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(ids))):
        found.update(session.execute(select(column).where(column.in_(chunk))).scalars())
    return found


def stay_over_at(
    admitted_at: datetime, max_days: int | None, extended_days: int
) -> datetime | None:
    """The instant a stay passes the facility's maximum plus its extensions: from then on
    more whole days have gone by than it may last (``None`` without a maximum)."""
    if max_days is None:
        return None
    return as_utc(admitted_at) + timedelta(days=max_days + extended_days + 1)


def _facilities(session: Session, ids: list[str]) -> dict[str, RosterFacility]:
    """The rows of ``ids`` on the roster: from the session when it holds them, else read."""
    found: dict[str, RosterFacility] = {}
    missing: list[str] = []
    for fid in ids:
        row = session.identity_map.get(session.identity_key(RosterFacility, fid))
        if isinstance(row, RosterFacility):
            found[fid] = row
        else:
            missing.append(fid)
    if missing:
        stmt = select(RosterFacility).where(col(RosterFacility.facility_id).in_(missing))
        found.update((f.facility_id, f) for f in session.execute(stmt).scalars())
    return found


def refresh(session: Session, facility_ids: Iterable[str], parts: Iterable[str] = PARTS) -> None:
    """Recompute the kept columns (of ``parts``) of these facilities' roster rows."""
    wanted = set(parts)
    ids = sorted({fid for fid in facility_ids if fid})
    session.flush()
    for chunk_ids in chunks(ids):
        facs = _facilities(session, chunk_ids)
        if not facs:
            continue
        chunk = sorted(facs)
        if "pools" in wanted:
            _pools(session, facs, chunk)
        if "visits" in wanted:
            _visits(session, facs, chunk)
        if "actions" in wanted:
            _actions(session, facs, chunk)
        if "stays" in wanted:
            _stays(session, facs, chunk)
    session.flush()


def _grouped(session: Session, model: Any, chunk: list[str], *columns: Any) -> dict[str, Any]:
    fid = col(model.facility_id)
    stmt = select(fid, *columns).where(fid.in_(chunk)).group_by(fid)
    return {row[0]: row for row in session.execute(stmt)}


def _pools(session: Session, facs: dict[str, RosterFacility], chunk: list[str]) -> None:
    stamp = col(RosterPool.last_confirmed_at)
    rows = _grouped(
        session, RosterPool, chunk,
        func.count(), func.sum(col(RosterPool.total)), func.sum(col(RosterPool.occupied)),
        func.min(stamp), func.count(stamp),
    )  # fmt: skip
    for fid, fac in facs.items():
        row = rows.get(fid)
        n, total, occupied, oldest, confirmed = row[1:] if row else (0, 0, 0, None, 0)
        fac.pool_count, fac.beds, fac.occupied = int(n), int(total or 0), int(occupied or 0)
        # Confirmed as of its oldest pool, and only when every pool was ever confirmed.
        fac.capacity_confirmed_at = as_utc(oldest) if n and confirmed == n and oldest else None


def _visits(session: Session, facs: dict[str, RosterFacility], chunk: list[str]) -> None:
    done = (col(Visit.status) == "done") & col(Visit.done_on).is_not(None)
    planned = (col(Visit.status) == "planned") & col(Visit.planned_for).is_not(None)
    rows = _grouped(
        session, Visit, chunk,
        func.max(case((done, col(Visit.done_on)))), func.count(case((done, 1))),
        func.min(case((planned, col(Visit.planned_for)))),
    )  # fmt: skip
    for fid, fac in facs.items():
        last, n, planned_for = rows[fid][1:] if fid in rows else (None, 0, None)
        fac.last_visit_on, fac.visits_done, fac.next_visit_planned_for = last, int(n), planned_for
        fac.visit_since_on = last or as_utc(fac.first_seen_at).date()


def _actions(session: Session, facs: dict[str, RosterFacility], chunk: list[str]) -> None:
    fid_col = col(FollowUpAction.facility_id)
    stmt = (
        select(fid_col, func.count(), func.min(col(FollowUpAction.due_on)))
        .where(fid_col.in_(chunk), col(FollowUpAction.completed_at).is_(None))
        .group_by(fid_col)
    )
    rows = {row[0]: row for row in session.execute(stmt)}
    for fid, fac in facs.items():
        n, due = rows[fid][1:] if fid in rows else (0, None)
        fac.open_actions, fac.action_due_on = int(n), due


def _stays(session: Session, facs: dict[str, RosterFacility], chunk: list[str]) -> None:
    # Open stays, and ended ones still holding an instant to clear.
    stmt = select(RosterStay).where(
        col(RosterStay.facility_id).in_(chunk),
        col(RosterStay.open) | col(RosterStay.over_at).is_not(None),
    )
    over: dict[str, list[datetime]] = {}
    for stay in session.execute(stmt).scalars():
        fac = facs[stay.facility_id]
        at = stay_over_at(stay.admitted_at, fac.max_stay_days, stay.extended_days)
        at = at if stay.open else None
        if as_utc_or_none(stay.over_at) != at:
            stay.over_at = at
        if at is not None:
            over.setdefault(stay.facility_id, []).append(at)
    for fid, fac in facs.items():
        found = over.get(fid)
        fac.stay_over_first_at = min(found) if found else None
        fac.stay_over_last_at = max(found) if found else None


def add_imported_stays(session: Session, stays: dict[str, tuple[str, datetime]]) -> None:
    """Add new stays (referral id -> facility id, admission) of a bulk history import,
    still open, and fold them into their facilities' kept stay columns: what ``refresh``
    of ``stays`` would leave, without reading every open stay of those facilities again on
    every batch (a national import grew that read with each batch). The stays must be new.
    """
    if not stays:
        return
    session.flush()
    facs: dict[str, RosterFacility] = {}
    ids = sorted({fid for fid, _ in stays.values()})
    for chunk_ids in chunks(ids):
        facs.update(_facilities(session, chunk_ids))
    rows: list[dict[str, Any]] = []
    over: dict[str, list[datetime]] = {}
    for rid, (fid, admitted_at) in stays.items():
        fac = facs.get(fid)
        # a facility not on the roster yet gets its stays' instants when it arrives (refresh)
        at = stay_over_at(admitted_at, fac.max_stay_days, 0) if fac is not None else None
        rows.append(
            {"referral_id": rid, "facility_id": fid, "admitted_at": admitted_at,
             "open": True, "extended_days": 0, "over_at": at}
        )  # fmt: skip
        if at is not None:
            over.setdefault(fid, []).append(at)
    session.execute(insert(RosterStay), rows)
    for fid, found in over.items():
        fac = facs[fid]
        first, last = fac.stay_over_first_at, fac.stay_over_last_at
        fac.stay_over_first_at = min([*found, *([as_utc(first)] if first else [])])
        fac.stay_over_last_at = max([*found, *([as_utc(last)] if last else [])])
    session.flush()

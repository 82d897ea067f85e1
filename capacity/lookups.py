"""Reading capacity's rows: one facility, pool or hold (or its 404), pages and lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from capacity.events import pool_snapshot
from capacity.exceptions import FacilityNotFound, HoldNotFound, PoolNotFound
from capacity.models import (
    Facility,
    FacilityLocation,
    FacilityStatusChange,
    Hold,
    HoldAllocation,
    LedgerEntry,
    Pool,
)
from services.pages import after
from services.vocabulary import FacilityStatus, HoldStatus

# --- facilities -----------------------------------------------------------------------


def get_facility(session: Session, facility_id: str) -> Facility:
    facility = session.get(Facility, facility_id)
    if facility is None:
        raise FacilityNotFound()
    return facility


def get_location(session: Session, facility_id: str) -> FacilityLocation | None:
    return session.get(FacilityLocation, facility_id)


def locations_for(session: Session, ids: Iterable[str]) -> dict[str, FacilityLocation]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.execute(
        select(FacilityLocation).where(col(FacilityLocation.facility_id).in_(ids))
    ).scalars()
    return {loc.facility_id: loc for loc in rows}


def list_facilities(
    session: Session,
    *,
    state: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    operator_institution_id: str | None = None,
    registration_status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    after_key: tuple[Any, ...] | None = None,
) -> tuple[list[Facility], int]:
    """Up to ``limit + 1`` facilities of the roster (by state, name, id; after
    ``after_key`` when given) and the number of facilities matching the filters."""
    stmt = select(Facility)
    if registration_status:
        stmt = stmt.where(col(Facility.registration_status) == registration_status)
    if state:
        stmt = stmt.where(col(Facility.state) == state)
    if kind:
        stmt = stmt.where(col(Facility.kind) == kind)
    if status:
        stmt = stmt.where(col(Facility.status) == status)
    if operator_institution_id:
        stmt = stmt.where(col(Facility.operator_institution_id) == operator_institution_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    order = [col(Facility.state), col(Facility.name), col(Facility.id)]
    if after_key is not None:
        stmt = stmt.where(after(order, after_key))
    rows = session.execute(stmt.order_by(*order).limit(limit + 1).offset(offset)).scalars()
    return list(rows), int(total)


def facility_key(facility: Facility) -> tuple[Any, ...]:
    """A facility's place in the roster's order (its cursor)."""
    return (facility.state, facility.name, facility.id)


def status_history(session: Session, facility_id: str) -> list[FacilityStatusChange]:
    return list(
        session.execute(
            select(FacilityStatusChange)
            .where(col(FacilityStatusChange.facility_id) == facility_id)
            .order_by(col(FacilityStatusChange.at))
        ).scalars()
    )


# --- pools ----------------------------------------------------------------------------


def get_pool(session: Session, pool_id: str) -> Pool:
    pool = session.get(Pool, pool_id)
    if pool is None:
        raise PoolNotFound()
    return pool


def list_pools(
    session: Session, *, facility_id: str, limit: int, after_key: tuple[Any, ...] | None = None
) -> list[Pool]:
    """Up to ``limit + 1`` of a facility's pools, by name and id (after ``after_key``)."""
    order = [col(Pool.name), col(Pool.id)]
    stmt = select(Pool).where(col(Pool.facility_id) == facility_id)
    if after_key is not None:
        stmt = stmt.where(after(order, after_key))
    return list(session.execute(stmt.order_by(*order).limit(limit + 1)).scalars())


def pool_key(pool: Pool) -> tuple[Any, ...]:
    return (pool.name, pool.id)


def facility_pools(session: Session, facility_id: str) -> list[Pool]:
    """A facility's pools in id order (the order their change events go out in)."""
    return list(
        session.execute(
            select(Pool).where(col(Pool.facility_id) == facility_id).order_by(col(Pool.id))
        ).scalars()
    )


def pools_by_id(session: Session, ids: Iterable[str]) -> dict[str, Pool]:
    return {
        p.id: p for p in session.execute(select(Pool).where(col(Pool.id).in_(list(ids)))).scalars()
    }


def pool_snapshot_rows(
    session: Session, *, state: str | None = None, facility_id: str | None = None
) -> list[dict[str, Any]]:
    """Snapshots of every pool of active facilities (the live feed's initial state)."""
    stmt = (
        select(Pool, Facility)
        .join(Facility, col(Facility.id) == col(Pool.facility_id))
        .where(col(Facility.status) == FacilityStatus.ACTIVE.value)
    )
    if state is not None:
        stmt = stmt.where(col(Facility.state) == state)
    if facility_id is not None:
        stmt = stmt.where(col(Facility.id) == facility_id)
    stmt = stmt.order_by(col(Facility.id), col(Pool.id))
    return [pool_snapshot(pool, fac) for pool, fac in session.execute(stmt).all()]


# --- the ledger -----------------------------------------------------------------------


def list_ledger(
    session: Session,
    *,
    pool_id: str,
    limit: int,
    offset: int,
    after_key: tuple[Any, ...] | None = None,
) -> list[LedgerEntry]:
    """Up to ``limit + 1`` of a pool's entries, oldest first (after ``after_key``)."""
    order = [col(LedgerEntry.seq)]
    stmt = select(LedgerEntry).where(col(LedgerEntry.pool_id) == pool_id)
    if after_key is not None:
        stmt = stmt.where(after(order, after_key))
    return list(session.execute(stmt.order_by(*order).limit(limit + 1).offset(offset)).scalars())


def ledger_key(entry: LedgerEntry) -> tuple[Any, ...]:
    return (entry.seq,)


def entry_by_key(session: Session, *, pool_id: str, idempotency_key: str) -> LedgerEntry | None:
    return session.execute(
        select(LedgerEntry).where(
            col(LedgerEntry.pool_id) == pool_id,
            col(LedgerEntry.idempotency_key) == idempotency_key,
        )
    ).scalar_one_or_none()


# --- holds ----------------------------------------------------------------------------


def get_hold(session: Session, hold_id: str) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise HoldNotFound()
    return hold


def hold_allocations(session: Session, hold_id: str) -> list[HoldAllocation]:
    return list(
        session.execute(
            select(HoldAllocation)
            .where(col(HoldAllocation.hold_id) == hold_id)
            .order_by(col(HoldAllocation.pool_id))
        ).scalars()
    )


def allocations_by_hold(session: Session, hold_ids: list[str]) -> dict[str, list[HoldAllocation]]:
    """The allocations of several holds in one query, by hold id (each in pool order)."""
    found: dict[str, list[HoldAllocation]] = {h: [] for h in hold_ids}
    if hold_ids:
        for a in session.execute(
            select(HoldAllocation)
            .where(col(HoldAllocation.hold_id).in_(hold_ids))
            .order_by(col(HoldAllocation.pool_id))
        ).scalars():
            found[a.hold_id].append(a)
    return found


def hold_by_key(session: Session, *, created_by: str, idempotency_key: str) -> Hold | None:
    return session.execute(
        select(Hold).where(
            col(Hold.created_by) == created_by, col(Hold.idempotency_key) == idempotency_key
        )
    ).scalar_one_or_none()


def active_holds(session: Session, *, facility_id: str) -> list[Hold]:
    return list(
        session.execute(
            select(Hold).where(
                col(Hold.facility_id) == facility_id, col(Hold.status) == HoldStatus.ACTIVE.value
            )
        ).scalars()
    )

# SQLModel columns compared in where() are typed as bool; SQLAlchemy accepts them.
# mypy: disable-error-code="arg-type,call-overload"
"""Capacity logic: roster, pools, the occupancy ledger, holds and availability search.

Plain functions with keyword-only arguments and no HTTP. Every change of a pool's counts
is one compare-and-set ``UPDATE`` (the guard is in the ``WHERE``, so concurrent requests
can never hand out more beds than exist) plus an appended ledger entry and an outbox
event, all in the caller's transaction. Each such write first bumps the capacity-wide
revision (one row), which orders writers and lets the search read model refresh only
what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from capacity import permissions
from capacity.database import outbox
from capacity.exceptions import (
    BedsUnavailable,
    CountsConflict,
    FacilityNotActive,
    FacilityNotFound,
    FacilityNotRegistered,
    HoldNotActive,
    HoldNotFound,
    IdempotencyKeyReused,
    InvalidTransition,
    PoolNotFound,
    StaleVersion,
)
from capacity.models import (
    CapacityRevision,
    Facility,
    FacilityLocation,
    FacilityStatusChange,
    Hold,
    HoldAllocation,
    LedgerEntry,
    Pool,
    UnmetRequest,
)
from capacity.schemas import (
    FacilityCreate,
    FacilityUpdate,
    HoldCreate,
    LedgerCreate,
    PoolCreate,
    PoolUpdate,
)
from services.clock import as_utc, utcnow
from services.errors import Unprocessable
from services.tokens import Principal

log = logging.getLogger("canaliza.capacity")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "registered": ("active", "closed"),
    "active": ("suspended", "closed"),
    "suspended": ("active", "closed"),
    "closed": (),
}
STATUS_LABELS = {
    "registered": "registrada",
    "active": "activa",
    "suspended": "suspendida",
    "closed": "cerrada",
}
SYSTEM_ACTOR = "system:capacity"

POOL_TABLE = Pool.__table__  # type: ignore[attr-defined]


# --- revision -------------------------------------------------------------------------


def bump_revision(session: Session) -> int:
    """Take the next capacity revision (and the row's lock, which orders writers)."""
    table = CapacityRevision.__table__  # type: ignore[attr-defined]
    result = session.execute(
        update(table).where(table.c.id == 1).values(revision=table.c.revision + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(table.insert().values(id=1, revision=1))
    return int(session.execute(select(table.c.revision).where(table.c.id == 1)).scalar_one())


def current_revision(session_or_conn: Any) -> int:
    table = CapacityRevision.__table__  # type: ignore[attr-defined]
    value = session_or_conn.execute(select(table.c.revision).where(table.c.id == 1)).scalar()
    return int(value or 0)


# --- snapshots and events -------------------------------------------------------------


def available_of(pool: Pool) -> int:
    return max(pool.total - pool.occupied - pool.held - pool.out_of_service, 0)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def pool_snapshot(pool: Pool, facility: Facility) -> dict[str, Any]:
    """The pool as the live feed sees it (never the address)."""
    return {
        "pool_id": pool.id,
        "facility_id": facility.id,
        "facility_name": facility.name,
        "facility_kind": facility.kind,
        "facility_status": facility.status,
        "operator_institution_id": facility.operator_institution_id,
        "state": facility.state,
        "municipality": facility.municipality,
        "version": pool.version,
        "total": pool.total,
        "occupied": pool.occupied,
        "held": pool.held,
        "out_of_service": pool.out_of_service,
        "available": available_of(pool),
        "sexes": list(pool.sexes),
        "min_age": pool.min_age,
        "max_age": pool.max_age,
        "accepts_children": pool.accepts_children,
        "max_child_age": pool.max_child_age,
        "max_children": pool.max_children,
        "accepts_witnesses": pool.accepts_witnesses,
        "accepts_indirect_victims": pool.accepts_indirect_victims,
        "wheelchair_accessible": pool.wheelchair_accessible,
        "migrants": pool.migrants,
        "lgbtttiq": pool.lgbtttiq,
        "interpreter_languages": list(pool.interpreter_languages),
        "last_confirmed_at": _iso(pool.last_confirmed_at),
    }


def pool_snapshot_rows(
    session: Session, *, state: str | None = None, facility_id: str | None = None
) -> list[dict[str, Any]]:
    """Snapshots of every pool of active facilities (the live feed's initial state)."""
    stmt = (
        select(Pool, Facility)
        .join(Facility, Facility.id == Pool.facility_id)  # type: ignore[arg-type]
        .where(Facility.status == "active")
    )
    if state is not None:
        stmt = stmt.where(Facility.state == state)
    if facility_id is not None:
        stmt = stmt.where(Facility.id == facility_id)
    stmt = stmt.order_by(Facility.id, Pool.id)  # type: ignore[arg-type]
    return [pool_snapshot(pool, fac) for pool, fac in session.execute(stmt).all()]


def _emit(
    session: Session,
    *,
    type: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int,
    actor: Principal | None,
    payload: dict[str, Any],
) -> None:
    outbox.emit(
        session,
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        version=version,
        principal=actor,
        payload=payload,
        system_actor=SYSTEM_ACTOR,
    )


def _emit_pool_changed(
    session: Session, pool: Pool, facility: Facility, actor: Principal | None
) -> None:
    _emit(
        session,
        type="capacity.pool.changed",
        aggregate_type="pool",
        aggregate_id=pool.id,
        version=pool.version,
        actor=actor,
        payload=pool_snapshot(pool, facility),
    )


# --- facilities -----------------------------------------------------------------------


def get_facility(session: Session, facility_id: str) -> Facility:
    facility = session.get(Facility, facility_id)
    if facility is None:
        raise FacilityNotFound()
    return facility


def get_location(session: Session, facility_id: str) -> FacilityLocation | None:
    return session.get(FacilityLocation, facility_id)


def facility_view(
    facility: Facility, location: FacilityLocation | None, *, with_location: bool
) -> dict[str, Any]:
    """The facility as an answer; the location only when the caller may see it."""
    data = facility.model_dump()
    data["status_changed_at"] = as_utc(facility.status_changed_at)
    data["created_at"] = as_utc(facility.created_at)
    if with_location:
        data["address"] = location.address if location else None
        data["latitude"] = location.latitude if location else None
        data["longitude"] = location.longitude if location else None
    return data


def _facility_event_payload(facility: Facility) -> dict[str, Any]:
    return {
        "facility_id": facility.id,
        "name": facility.name,
        # The trail strips "name" keys (people's names); a facility's name is not one.
        "facility_name": facility.name,
        "kind": facility.kind,
        "status": facility.status,
        "registration_status": facility.registration_status,
        "specialization": facility.specialization,
        "services": list(facility.services),
        "operator_institution_id": facility.operator_institution_id,
        "state": facility.state,
        "municipality": facility.municipality,
    }


def create_facility(session: Session, *, principal: Principal, data: FacilityCreate) -> Facility:
    """Register a facility on the roster (its address stored apart)."""
    now = utcnow()
    fields = data.model_dump(exclude={"address", "latitude", "longitude", "status"})
    facility = Facility(**fields, status=data.status, status_changed_at=now, created_at=now)
    facility.status_reason = "alta en el padrón"
    session.add(facility)
    session.flush()
    if data.address is not None or data.latitude is not None or data.longitude is not None:
        session.add(
            FacilityLocation(
                facility_id=facility.id,
                address=data.address or "",
                latitude=data.latitude,
                longitude=data.longitude,
            )
        )
    session.add(
        FacilityStatusChange(
            facility_id=facility.id,
            from_status=None,
            to_status=facility.status,
            reason="alta en el padrón",
            actor=principal.sub,
            at=now,
        )
    )
    _emit(
        session,
        type="capacity.facility.created",
        aggregate_type="facility",
        aggregate_id=facility.id,
        version=facility.version,
        actor=principal,
        payload=_facility_event_payload(facility),
    )
    session.flush()
    return facility


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
) -> tuple[list[Facility], int]:
    """A page of the roster and the number of facilities matching the filters."""
    stmt = select(Facility)
    if registration_status:
        stmt = stmt.where(Facility.registration_status == registration_status)
    if state:
        stmt = stmt.where(Facility.state == state)
    if kind:
        stmt = stmt.where(Facility.kind == kind)
    if status:
        stmt = stmt.where(Facility.status == status)
    if operator_institution_id:
        stmt = stmt.where(Facility.operator_institution_id == operator_institution_id)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(Facility.state, Facility.name, Facility.id)  # type: ignore[arg-type]
        .limit(limit)
        .offset(offset)
    ).scalars()
    return list(rows), int(total)


def locations_for(session: Session, ids: Iterable[str]) -> dict[str, FacilityLocation]:
    ids = list(ids)
    if not ids:
        return {}
    rows = session.execute(
        select(FacilityLocation).where(FacilityLocation.facility_id.in_(ids))  # type: ignore[attr-defined]
    ).scalars()
    return {loc.facility_id: loc for loc in rows}


def update_facility(
    session: Session, *, principal: Principal, facility_id: str, data: FacilityUpdate
) -> Facility:
    """Edit a facility and/or move it along its lifecycle (with date and reason)."""
    facility = get_facility(session, facility_id)
    now = utcnow()
    changes = data.model_dump(exclude_unset=True)
    status = changes.pop("status", None)
    reason = changes.pop("reason", None)
    location_fields = {
        k: changes.pop(k) for k in ("address", "latitude", "longitude") if k in changes
    }
    previous = facility.status
    if status is not None and status != facility.status:
        if status not in TRANSITIONS[facility.status]:
            raise InvalidTransition(
                f"Una instalación {STATUS_LABELS[facility.status]} no puede pasar a "
                f"{STATUS_LABELS[status]}.",
                extra={"from": facility.status, "to": status},
            )
    elif status is not None:
        raise InvalidTransition(
            f"La instalación ya está {STATUS_LABELS[status]}.",
            extra={"from": facility.status, "to": status},
        )
    rev = bump_revision(session)
    for key, value in changes.items():
        if value is None and key not in ("max_stay_days",):
            continue
        setattr(facility, key, value)
    if location_fields:
        loc = session.get(FacilityLocation, facility.id)
        if loc is None:
            loc = FacilityLocation(facility_id=facility.id, address="")
            session.add(loc)
        for key, value in location_fields.items():
            setattr(loc, key, value if value is not None or key != "address" else loc.address)
    if status is not None:
        facility.status = status
        facility.status_changed_at = now
        facility.status_reason = reason
        session.add(
            FacilityStatusChange(
                facility_id=facility.id,
                from_status=previous,
                to_status=status,
                reason=reason or "",
                actor=principal.sub,
                at=now,
            )
        )
    facility.version += 1
    session.add(facility)
    session.flush()
    if status == "closed":
        for hold in session.execute(
            select(Hold).where(Hold.facility_id == facility.id, Hold.status == "active")
        ).scalars():
            _end_hold(
                session, hold=hold, status="released", actor=principal, rev=rev, emit_pools=False
            )
    # Every pool of the facility carries the facility's name and status: tell the feed.
    for pool in session.execute(
        select(Pool).where(Pool.facility_id == facility.id).order_by(Pool.id)  # type: ignore[arg-type]
    ).scalars():
        session.execute(
            update(POOL_TABLE)
            .where(POOL_TABLE.c.id == pool.id)
            .values(version=POOL_TABLE.c.version + 1, revision=rev)
        )
        session.refresh(pool)
        _emit_pool_changed(session, pool, facility, principal)
    if status is not None:
        _emit(
            session,
            type="capacity.facility.status_changed",
            aggregate_type="facility",
            aggregate_id=facility.id,
            version=facility.version,
            actor=principal,
            payload={**_facility_event_payload(facility), "from": previous, "reason": reason},
        )
    else:
        _emit(
            session,
            type="capacity.facility.updated",
            aggregate_type="facility",
            aggregate_id=facility.id,
            version=facility.version,
            actor=principal,
            payload=_facility_event_payload(facility),
        )
    return facility


def status_history(session: Session, facility_id: str) -> list[FacilityStatusChange]:
    return list(
        session.execute(
            select(FacilityStatusChange)
            .where(FacilityStatusChange.facility_id == facility_id)
            .order_by(FacilityStatusChange.at)  # type: ignore[arg-type]
        ).scalars()
    )


# --- pools ----------------------------------------------------------------------------


def get_pool(session: Session, pool_id: str) -> Pool:
    pool = session.get(Pool, pool_id)
    if pool is None:
        raise PoolNotFound()
    return pool


def pool_view(pool: Pool) -> dict[str, Any]:
    data = pool.model_dump(exclude={"revision", "created_at"})
    data["available"] = available_of(pool)
    data["last_confirmed_at"] = (
        as_utc(pool.last_confirmed_at) if pool.last_confirmed_at is not None else None
    )
    return data


def list_pools(session: Session, *, facility_id: str) -> list[Pool]:
    return list(
        session.execute(
            select(Pool).where(Pool.facility_id == facility_id).order_by(Pool.name, Pool.id)  # type: ignore[arg-type]
        ).scalars()
    )


def _check_children(pool: Pool) -> None:
    if pool.accepts_children and pool.max_children < 1:
        raise Unprocessable(
            "Si el grupo de camas recibe niñas y niños acompañantes, indique cuántos "
            "(max_children ≥ 1).",
            code="max_children_required",
        )


def create_pool(
    session: Session, *, principal: Principal, facility_id: str, data: PoolCreate
) -> Pool:
    """Add a pool; its initial beds enter the ledger as an adjustment."""
    facility = get_facility(session, facility_id)
    if facility.status == "closed":
        raise FacilityNotActive(
            "La instalación está cerrada; no se le pueden agregar camas.",
        )
    rev = bump_revision(session)
    now = utcnow()
    pool = Pool(
        **data.model_dump(exclude={"total"}),
        facility_id=facility.id,
        total=data.total,
        revision=rev,
        last_confirmed_at=now,
        created_at=now,
    )
    _check_children(pool)
    session.add(pool)
    session.flush()
    if data.total:
        _ledger(
            session,
            pool=pool,
            kind="adjust",
            beds=data.total,
            reason="alta del grupo de camas",
            actor=principal,
            hold_id=None,
        )
    _emit_pool_changed(session, pool, facility, principal)
    return pool


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: 3``, ``"3"`` or ``W/"3"`` → 3; anything else is a 400."""
    if value is None:
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise Unprocessable(
            "El encabezado If-Match debe llevar la versión del grupo de camas (un número).",
            code="invalid_if_match",
        )
    return int(raw)


def update_pool(
    session: Session,
    *,
    principal: Principal,
    pool_id: str,
    data: PoolUpdate,
    if_match: int | None,
) -> Pool:
    """Change eligibility (and the total, as an adjustment), honouring ``If-Match``."""
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_edit_pool(principal, facility.operator_institution_id)
    if if_match is not None and if_match != pool.version:
        raise StaleVersion(pool.version)
    changes = data.model_dump(exclude_unset=True)
    reason = changes.pop("reason", None)
    new_total = changes.pop("total", None)
    changes = {k: v for k, v in changes.items() if v is not None}
    merged = {**pool_view(pool), **changes}
    if merged["min_age"] > merged["max_age"]:
        raise Unprocessable(
            f"La edad mínima ({merged['min_age']}) no puede ser mayor que la edad máxima "
            f"({merged['max_age']}).",
            code="age_range",
        )
    rev = bump_revision(session)
    expected = pool.version
    result = session.execute(
        update(POOL_TABLE)
        .where(POOL_TABLE.c.id == pool.id, POOL_TABLE.c.version == expected)
        .values(**changes, version=POOL_TABLE.c.version + 1, revision=rev)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(pool)
        raise StaleVersion(pool.version)
    session.refresh(pool)
    _check_children(pool)
    if new_total is not None and new_total != pool.total:
        _apply(
            session,
            pool=pool,
            kind="adjust",
            beds=new_total - pool.total,
            reason=reason or "cambio del total de camas",
            actor=principal,
            rev=rev,
            bump_version=False,
        )
    _emit_pool_changed(session, pool, facility, principal)
    return pool


def confirm_pool(session: Session, *, principal: Principal, pool_id: str) -> Pool:
    """Record that the pool's counts were confirmed right now."""
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_confirm_pool(principal, facility.operator_institution_id)
    rev = bump_revision(session)
    session.execute(
        update(POOL_TABLE)
        .where(POOL_TABLE.c.id == pool.id)
        .values(last_confirmed_at=utcnow(), version=POOL_TABLE.c.version + 1, revision=rev)
    )
    session.refresh(pool)
    _emit_pool_changed(session, pool, facility, principal)
    return pool


# --- ledger ---------------------------------------------------------------------------

# kind -> (column changes per bed, guard that must hold before the change)
_EFFECTS: dict[str, tuple[dict[str, int], str]] = {
    "admit": ({"occupied": 1}, "available"),
    "discharge": ({"occupied": -1}, "occupied"),
    "hold": ({"held": 1}, "available"),
    "release": ({"held": -1}, "held"),
    "adjust": ({"total": 1}, "adjust"),
    "out_of_service": ({"out_of_service": 1}, "available"),
    "back_in_service": ({"out_of_service": -1}, "out_of_service"),
}

_REFUSALS = {
    "available": "No hay {beds} cama(s) disponible(s) en este grupo (disponibles: {available}).",
    "occupied": "No se pueden dar de baja {beds} cama(s): sólo hay {occupied} ocupada(s).",
    "held": "No hay {beds} cama(s) reservada(s) que liberar.",
    "out_of_service": "Sólo hay {out_of_service} cama(s) fuera de servicio; no se pueden "
    "reincorporar {beds}.",
    "adjust": "El total no puede quedar por debajo de las camas ocupadas, reservadas o fuera "
    "de servicio ({used}).",
}


@dataclass(frozen=True)
class Counts:
    total: int = 0
    occupied: int = 0
    held: int = 0
    out_of_service: int = 0

    @property
    def available(self) -> int:
        return self.total - self.occupied - self.held - self.out_of_service


def replay_ledger(entries: Iterable[tuple[str, int]]) -> Counts:
    """The counts that a sequence of ``(kind, beds)`` ledger entries produces from zero."""
    values = {"total": 0, "occupied": 0, "held": 0, "out_of_service": 0}
    for kind, beds in entries:
        for column, sign in _EFFECTS[kind][0].items():
            values[column] += sign * beds
    return Counts(**values)


def ledger_counts(session: Session, *, pool_id: str) -> Counts:
    """Replay a pool's ledger."""
    rows = session.execute(
        select(LedgerEntry.kind, LedgerEntry.beds)
        .where(LedgerEntry.pool_id == pool_id)
        .order_by(LedgerEntry.seq)  # type: ignore[arg-type]
    ).all()
    return replay_ledger((kind, beds) for kind, beds in rows)


def _cas(session: Session, *, pool_id: str, kind: str, beds: int, rev: int, bump: bool) -> bool:
    """One guarded UPDATE: applies the change only if the counts allow it."""
    effects, guard = _EFFECTS[kind]
    c = POOL_TABLE.c
    values: dict[str, Any] = {col: c[col] + sign * beds for col, sign in effects.items()}
    values["revision"] = rev
    if bump:
        values["version"] = c.version + 1
    available = c.total - c.occupied - c.held - c.out_of_service
    condition = {
        "available": available >= beds,
        "occupied": c.occupied >= beds,
        "held": c.held >= beds,
        "out_of_service": c.out_of_service >= beds,
        "adjust": (available + beds >= 0) & (c.total + beds >= 0),
    }[guard]
    result = session.execute(update(POOL_TABLE).where(c.id == pool_id, condition).values(**values))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _ledger(
    session: Session,
    *,
    pool: Pool,
    kind: str,
    beds: int,
    reason: str,
    actor: Principal | None,
    hold_id: str | None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    entry = LedgerEntry(
        pool_id=pool.id,
        kind=kind,
        beds=beds,
        reason=reason,
        actor=actor.sub if actor else SYSTEM_ACTOR,
        institution_id=actor.institution_id if actor else None,
        hold_id=hold_id,
        idempotency_key=idempotency_key,
        pool_version=pool.version,
        at=utcnow(),
    )
    session.add(entry)
    return entry


def _apply(
    session: Session,
    *,
    pool: Pool,
    kind: str,
    beds: int,
    reason: str,
    actor: Principal | None,
    rev: int,
    hold_id: str | None = None,
    bump_version: bool = True,
    error: type[Exception] = CountsConflict,
    idempotency_key: str | None = None,
) -> None:
    """Compare-and-set the counts, then append the entry; refuses what the counts can't take."""
    if not _cas(session, pool_id=pool.id, kind=kind, beds=beds, rev=rev, bump=bump_version):
        session.refresh(pool)
        guard = _EFFECTS[kind][1]
        detail = _REFUSALS[guard].format(
            beds=abs(beds),
            available=available_of(pool),
            occupied=pool.occupied,
            out_of_service=pool.out_of_service,
            used=pool.occupied + pool.held + pool.out_of_service,
        )
        raise error(  # type: ignore[call-arg]
            detail, extra={"pool_id": pool.id, "requested": beds, "available": available_of(pool)}
        )
    session.refresh(pool)
    _ledger(
        session,
        pool=pool,
        kind=kind,
        beds=beds,
        reason=reason,
        actor=actor,
        hold_id=hold_id,
        idempotency_key=idempotency_key,
    )


def record_entry(
    session: Session,
    *,
    principal: Principal,
    pool_id: str,
    data: LedgerCreate,
    idempotency_key: str | None = None,
) -> tuple[Pool, LedgerEntry, bool]:
    """A client ledger entry (admit, discharge, adjust, out/back in service).

    Returns ``(pool, entry, created_now)``: an entry written earlier under the same
    ``idempotency_key`` is answered again instead of changing the counts twice.
    """
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_write_ledger(principal, facility.operator_institution_id)
    # Taken first, so that retries with one key queue up and the later find the earlier.
    rev = bump_revision(session)
    if idempotency_key:
        earlier = session.execute(
            select(LedgerEntry).where(
                LedgerEntry.pool_id == pool.id, LedgerEntry.idempotency_key == idempotency_key
            )
        ).scalar_one_or_none()
        if earlier is not None:
            if (earlier.kind, earlier.beds) != (data.kind, data.beds):
                raise IdempotencyKeyReused(
                    "Esa clave de idempotencia ya se usó con otro movimiento; use una clave nueva."
                )
            session.refresh(pool)
            return pool, earlier, False
    if data.kind == "admit" and facility.status != "active":
        raise FacilityNotActive(
            f"La instalación está {STATUS_LABELS[facility.status]}; no puede registrar ingresos."
        )
    _apply(
        session,
        pool=pool,
        kind=data.kind,
        beds=data.beds,
        reason=data.reason,
        actor=principal,
        rev=rev,
        idempotency_key=idempotency_key,
    )
    session.flush()
    entry = session.execute(
        select(LedgerEntry)
        .where(LedgerEntry.pool_id == pool.id)
        .order_by(LedgerEntry.seq.desc())  # type: ignore[union-attr]
        .limit(1)
    ).scalar_one()
    _emit_pool_changed(session, pool, facility, principal)
    return pool, entry, True


def list_ledger(session: Session, *, pool_id: str, limit: int, offset: int) -> list[LedgerEntry]:
    return list(
        session.execute(
            select(LedgerEntry)
            .where(LedgerEntry.pool_id == pool_id)
            .order_by(LedgerEntry.seq)  # type: ignore[arg-type]
            .limit(limit)
            .offset(offset)
        ).scalars()
    )


# --- holds ----------------------------------------------------------------------------


def _request_hash(data: HoldCreate) -> str:
    body = json.dumps(data.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def get_hold(session: Session, hold_id: str) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise HoldNotFound()
    return hold


def hold_allocations(session: Session, hold_id: str) -> list[HoldAllocation]:
    return list(
        session.execute(
            select(HoldAllocation)
            .where(HoldAllocation.hold_id == hold_id)
            .order_by(HoldAllocation.pool_id)  # type: ignore[arg-type]
        ).scalars()
    )


def hold_view(session: Session, hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "facility_id": hold.facility_id,
        "status": hold.status,
        "allocations": [
            {"pool_id": a.pool_id, "beds": a.beds} for a in hold_allocations(session, hold.id)
        ],
        "expires_at": as_utc(hold.expires_at),
        "created_at": as_utc(hold.created_at),
        "ended_at": as_utc(hold.ended_at) if hold.ended_at else None,
        "reference": hold.reference,
        "created_by": hold.created_by,
        "institution_id": hold.institution_id,
    }


def _hold_payload(hold: Hold, allocations: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {
        "hold_id": hold.id,
        "facility_id": hold.facility_id,
        "status": hold.status,
        "allocations": [{"pool_id": p, "beds": b} for p, b in allocations],
        "expires_at": _iso(hold.expires_at),
    }


def create_hold(
    session: Session,
    *,
    principal: Principal,
    data: HoldCreate,
    idempotency_key: str | None,
    default_ttl_minutes: int,
    registered_only: bool = False,
) -> tuple[Hold, bool]:
    """Hold beds in one facility, all or nothing. Returns (hold, created_now).

    With ``registered_only`` (``CANALIZA_UNREGISTERED_MAY_RECEIVE_REFERRALS=0``) a facility
    not registered on SEGOB's roster cannot be held, so it cannot receive a referral.
    """
    digest = _request_hash(data)
    # Taken first so that concurrent requests with one Idempotency-Key queue up here and
    # the later ones find the earlier one's hold instead of creating a second.
    rev = bump_revision(session)
    if idempotency_key:
        existing = session.execute(
            select(Hold).where(
                Hold.created_by == principal.sub, Hold.idempotency_key == idempotency_key
            )
        ).scalar_one_or_none()
        if existing is not None:
            if existing.request_hash != digest:
                raise IdempotencyKeyReused(
                    "Esa clave de idempotencia ya se usó con otra petición; use una clave nueva."
                )
            return existing, False
    wanted: dict[str, int] = {}
    for alloc in data.allocations:
        wanted[alloc.pool_id] = wanted.get(alloc.pool_id, 0) + alloc.beds
    pools = {
        p.id: p
        for p in session.execute(
            select(Pool).where(Pool.id.in_(list(wanted)))  # type: ignore[attr-defined]
        ).scalars()
    }
    missing = [pid for pid in wanted if pid not in pools]
    if missing:
        raise PoolNotFound()
    facility_ids = {p.facility_id for p in pools.values()}
    if len(facility_ids) != 1:
        raise Unprocessable(
            "Todas las camas de una reserva deben estar en una misma instalación: "
            "la familia no se separa.",
            code="allocations_span_facilities",
        )
    facility = get_facility(session, facility_ids.pop())
    if facility.status != "active":
        raise FacilityNotActive(
            f"La instalación «{facility.name}» está {STATUS_LABELS[facility.status]}; "
            "no se pueden reservar camas en ella.",
            extra={"facility_status": facility.status},
        )
    if registered_only and facility.registration_status != "registered":
        raise FacilityNotRegistered(
            f"La instalación «{facility.name}» no está registrada en el padrón de SEGOB; "
            "no puede recibir canalizaciones.",
            extra={"registration_status": facility.registration_status},
        )
    now = utcnow()
    ttl = data.ttl_minutes or default_ttl_minutes
    hold = Hold(
        facility_id=facility.id,
        reference=data.reference,
        created_by=principal.sub,
        institution_id=principal.institution_id,
        idempotency_key=idempotency_key,
        request_hash=digest,
        expires_at=now + timedelta(minutes=ttl),
        created_at=now,
    )
    session.add(hold)
    session.flush()
    ordered = sorted(wanted.items())
    for pool_id, beds in ordered:
        _apply(
            session,
            pool=pools[pool_id],
            kind="hold",
            beds=beds,
            reason=f"reserva {hold.id}",
            actor=principal,
            rev=rev,
            hold_id=hold.id,
            error=BedsUnavailable,
        )
        session.add(HoldAllocation(hold_id=hold.id, pool_id=pool_id, beds=beds))
    session.flush()
    for pool_id, _ in ordered:
        _emit_pool_changed(session, pools[pool_id], facility, principal)
    _emit(
        session,
        type="capacity.hold.created",
        aggregate_type="hold",
        aggregate_id=hold.id,
        version=hold.version,
        actor=principal,
        payload=_hold_payload(hold, ordered),
    )
    return hold, True


def _end_hold(
    session: Session,
    *,
    hold: Hold,
    status: str,
    actor: Principal | None,
    rev: int,
    emit_pools: bool = True,
) -> None:
    """Release (released/expired) or admit (consumed) a hold's beds."""
    facility = get_facility(session, hold.facility_id)
    allocations = hold_allocations(session, hold.id)
    for alloc in allocations:
        pool = get_pool(session, alloc.pool_id)
        label = {"released": "liberada", "expired": "vencida", "consumed": "ingreso"}[status]
        _apply(
            session,
            pool=pool,
            kind="release",
            beds=alloc.beds,
            reason=f"reserva {hold.id} {label}",
            actor=actor,
            rev=rev,
            hold_id=hold.id,
        )
        if status == "consumed":
            _apply(
                session,
                pool=pool,
                kind="admit",
                beds=alloc.beds,
                reason=f"ingreso por la reserva {hold.id}",
                actor=actor,
                rev=rev,
                hold_id=hold.id,
                bump_version=False,
            )
        if emit_pools:
            _emit_pool_changed(session, pool, facility, actor)
    hold.status = status
    hold.ended_at = utcnow()
    hold.version += 1
    session.add(hold)
    session.flush()
    _emit(
        session,
        type=f"capacity.hold.{status}",
        aggregate_type="hold",
        aggregate_id=hold.id,
        version=hold.version,
        actor=actor,
        payload=_hold_payload(hold, [(a.pool_id, a.beds) for a in allocations]),
    )


def release_hold(session: Session, *, principal: Principal, hold_id: str) -> Hold:
    """Give a hold's beds back (idempotent: an ended hold is returned as it is)."""
    hold = get_hold(session, hold_id)
    facility = get_facility(session, hold.facility_id)
    permissions.ensure_release_hold(
        principal,
        created_by=hold.created_by,
        institution_id=hold.institution_id,
        operator_id=facility.operator_institution_id,
    )
    if hold.status != "active":
        return hold
    rev = bump_revision(session)
    session.refresh(hold)
    if hold.status == "active":
        _end_hold(session, hold=hold, status="released", actor=principal, rev=rev)
    return hold


def consume_hold(session: Session, *, principal: Principal, hold_id: str) -> Hold:
    """Turn held beds into occupancy (the admission)."""
    hold = get_hold(session, hold_id)
    facility = get_facility(session, hold.facility_id)
    permissions.ensure_consume_hold(principal, operator_id=facility.operator_institution_id)
    rev = bump_revision(session)
    session.refresh(hold)  # under the revision lock: a concurrent release is visible now
    if hold.status == "consumed":
        return hold
    if hold.status != "active":
        raise HoldNotActive(
            f"La reserva ya no está vigente (estado: {hold.status}); no puede registrarse el "
            "ingreso con ella.",
            extra={"status": hold.status},
        )
    if as_utc(hold.expires_at) <= utcnow():
        raise HoldNotActive(
            "La reserva venció; haga una nueva reserva para registrar el ingreso.",
            extra={"status": "expired"},
        )
    _end_hold(session, hold=hold, status="consumed", actor=principal, rev=rev)
    return hold


def expire_holds(session: Session, now: datetime | None = None) -> list[str]:
    """Release every active hold whose time is up; returns their ids."""
    now = now or utcnow()
    due = list(
        session.execute(
            select(Hold)
            .where(Hold.status == "active", Hold.expires_at <= now)
            .order_by(Hold.expires_at)  # type: ignore[arg-type]
            .limit(500)
        ).scalars()
    )
    if not due:
        return []
    rev = bump_revision(session)
    expired = []
    for hold in due:
        session.refresh(hold)
        if hold.status != "active":
            continue
        _end_hold(session, hold=hold, status="expired", actor=None, rev=rev)
        expired.append(hold.id)
    return expired


# --- unmet requests -------------------------------------------------------------------


def _focus_band(people: list[dict[str, Any]], focus: dict[str, Any]) -> str | None:
    index = focus.get("person")
    if isinstance(index, int) and 0 <= index < len(people):
        return people[index].get("age_band")
    return None


def record_unmet(
    session: Session,
    *,
    principal: Principal,
    people: list[dict[str, Any]],
    state: str | None,
    code: str,
    reason: str,
    focus: dict[str, Any],
) -> UnmetRequest:
    """Keep what could not be placed (categories only, never identities) and tell the bus."""
    row = UnmetRequest(
        sex=focus["sex"],
        age_group=focus["age_group"],
        state=state,
        group_size=len(people),
        people=people,
        code=code,
        reason=reason[:1000],
        at=utcnow(),
    )
    session.add(row)
    session.flush()
    _emit(
        session,
        type="capacity.search.unmet",
        aggregate_type="unmet_request",
        aggregate_id=row.id,
        version=1,
        actor=principal,
        payload={
            "unmet_id": row.id,
            "sex": row.sex,
            "age_group": row.age_group,
            # The CNDH age group of the person nobody could take (statistics).
            "age_band": _focus_band(people, focus),
            "state": state,
            "group_size": row.group_size,
            "people": people,
            "code": code,
            "reason": row.reason,
        },
    )
    return row


def ledger_mismatches(session: Session) -> list[dict[str, Any]]:
    """Pools whose counts differ from the replay of their ledger (should always be empty)."""
    replayed: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(LedgerEntry.pool_id, LedgerEntry.kind, LedgerEntry.beds).order_by(LedgerEntry.seq)
    )
    for pool_id, kind, beds in rows:
        values = replayed.setdefault(
            pool_id, {"total": 0, "occupied": 0, "held": 0, "out_of_service": 0}
        )
        for column, sign in _EFFECTS[kind][0].items():
            values[column] += sign * beds
    out = []
    for pool in session.execute(select(Pool)).scalars():
        stored = {
            "total": pool.total,
            "occupied": pool.occupied,
            "held": pool.held,
            "out_of_service": pool.out_of_service,
        }
        expected = replayed.get(pool.id, {k: 0 for k in stored})
        if stored != expected:
            out.append({"pool_id": pool.id, "stored": stored, "replayed": expected})
    return out

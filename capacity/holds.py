"""Holds: beds set aside for a referral, in one facility, all or nothing, for a while."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from capacity import permissions
from capacity.events import emit_pool_changed, hold_concentration_alert, hold_event, record
from capacity.exceptions import (
    BedsUnavailable,
    FacilityNotActive,
    FacilityNotRegistered,
    HoldNotActive,
    HoldQuotaExceeded,
    HoldTtlTooLong,
    IdempotencyKeyReused,
    PoolNotFound,
)
from capacity.ledger import apply, bump_revision
from capacity.lookups import (
    active_holds,
    get_facility,
    get_hold,
    get_pool,
    hold_allocations,
    hold_by_key,
    pools_by_id,
)
from capacity.models import Facility, Hold, HoldAllocation, Pool
from capacity.schemas import HoldCreate
from services.clock import as_utc, utcnow
from services.errors import Unprocessable
from services.pages import after
from services.tokens import Principal
from services.vocabulary import FacilityStatus, HoldStatus, RegistrationStatus

# How the ledger names the end of a hold.
_END_LABELS = {
    HoldStatus.RELEASED: "liberada",
    HoldStatus.EXPIRED: "vencida",
    HoldStatus.CONSUMED: "ingreso",
}


def _request_hash(data: HoldCreate) -> str:
    # Without a group the hash is the one bodies had before the field existed.
    skip = {"people"} if data.people is None else None
    body = json.dumps(data.model_dump(mode="json", exclude=skip), sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def _emit_hold(
    session: Session, hold: Hold, allocations: Sequence[tuple[str, int]], actor: Principal | None
) -> None:
    record(
        session,
        hold_event(hold, allocations),
        aggregate_id=hold.id,
        version=hold.version,
        actor=actor,
    )


def _holdable_facility(
    session: Session, facility_ids: set[str], *, registered_only: bool
) -> Facility:
    """The one facility of a hold's pools, if it may be held now."""
    if len(facility_ids) != 1:
        raise Unprocessable(
            "Todas las camas de una reserva deben estar en una misma instalación: "
            "la familia no se separa.",
            code="allocations_span_facilities",
        )
    facility = get_facility(session, facility_ids.pop())
    if facility.status != FacilityStatus.ACTIVE:
        raise FacilityNotActive(
            f"La instalación «{facility.name}» está {FacilityStatus(facility.status).label}; "
            "no se pueden reservar camas en ella.",
            extra={"facility_status": facility.status},
        )
    if registered_only and facility.registration_status != RegistrationStatus.REGISTERED:
        raise FacilityNotRegistered(
            f"La instalación «{facility.name}» no está registrada en el padrón de SEGOB; "
            "no puede recibir canalizaciones.",
            extra={"registration_status": facility.registration_status},
        )
    return facility


@dataclass(frozen=True)
class HoldLimits:
    """Resource capture (issue 20): how long a hold may last, how many beds one institution
    may hold at once, and the share of a state's beds that alerts SEGOB."""

    max_ttl_minutes: int = 240
    quota_beds: int = 20
    alert_share: float = 0.5


def _holder_filter(principal: Principal) -> Any:
    """Whose holds count toward the quota: the institution's, else the account's own."""
    if principal.institution_id:
        return col(Hold.institution_id) == principal.institution_id
    return col(Hold.created_by) == principal.sub


def beds_held(
    session: Session,
    principal: Principal,
    *,
    now: datetime,
    state: str | None,
    operations: bool | None = False,
) -> int:
    """Beds the principal's institution holds now (active, unexpired holds), in ``state``:
    outside rescue operations (``operations`` False, the ordinary quota), in them (True,
    the operations' quota) or all (None)."""
    query = (
        select(func.coalesce(func.sum(HoldAllocation.beds), 0))
        .join(Hold, col(Hold.id) == col(HoldAllocation.hold_id))
        .where(
            _holder_filter(principal),
            col(Hold.status) == HoldStatus.ACTIVE.value,
            col(Hold.expires_at) > now,
        )
    )
    if operations is not None:
        query = query.where(
            col(Hold.operation_id).is_not(None) if operations else col(Hold.operation_id).is_(None)
        )
    if state is not None:
        query = query.join(Facility, col(Facility.id) == col(Hold.facility_id)).where(
            col(Facility.state) == state
        )
    return int(session.exec(query).one())


def _state_beds(session: Session, state: str) -> int:
    """Free and held beds of a state's active facilities (what a holder could take)."""
    query = (
        select(func.coalesce(func.sum(Pool.total - Pool.occupied - Pool.out_of_service), 0))
        .join(Facility, col(Facility.id) == col(Pool.facility_id))
        .where(col(Facility.state) == state, col(Facility.status) == FacilityStatus.ACTIVE.value)
    )
    return int(session.exec(query).one())


def _check_ttl(data: HoldCreate, *, default_ttl_minutes: int, limits: HoldLimits) -> int:
    if data.ttl_minutes is not None and data.ttl_minutes > limits.max_ttl_minutes:
        raise HoldTtlTooLong(
            f"Una reserva puede durar como máximo {limits.max_ttl_minutes} minutos; se pidieron "
            f"{data.ttl_minutes}. Renueve la reserva si el traslado tarda más.",
            extra={"max_ttl_minutes": limits.max_ttl_minutes},
        )
    return min(data.ttl_minutes or default_ttl_minutes, limits.max_ttl_minutes)


def _check_quota(
    session: Session, principal: Principal, *, beds: int, now: datetime, limits: HoldLimits
) -> None:
    held = beds_held(session, principal, now=now, state=None)
    if held + beds > limits.quota_beds:
        raise HoldQuotaExceeded(
            f"Su institución ya tiene {held} camas reservadas y el límite es {limits.quota_beds} "
            f"a la vez; esta reserva pide {beds}. Libere reservas que no vaya a usar o pida a "
            "la plataforma ampliar el límite (operativos de rescate).",
            extra={"held": held, "quota": limits.quota_beds, "requested": beds},
        )


def alert_on_concentration(
    session: Session, principal: Principal, hold: Hold, facility: Facility, *, beds: int,
    now: datetime, limits: HoldLimits,
) -> None:  # fmt: skip
    """Tell SEGOB when this hold takes its institution over the alert share of the state."""
    capacity = _state_beds(session, facility.state)
    if capacity <= 0:
        return
    held = beds_held(session, principal, now=now, state=facility.state, operations=None)
    before, after = (held - beds) / capacity, held / capacity
    if before <= limits.alert_share < after:
        record(
            session,
            hold_concentration_alert(
                institution_id=principal.institution_id or f"cuenta:{principal.sub}",
                state=facility.state,
                held=held,
                capacity=capacity,
                threshold=limits.alert_share,
                hold_id=hold.id,
            ),
            aggregate_id=principal.institution_id or principal.sub,
            version=hold.version,
            actor=principal,
        )


def create_hold(
    session: Session,
    *,
    principal: Principal,
    data: HoldCreate,
    idempotency_key: str | None,
    default_ttl_minutes: int,
    registered_only: bool = False,
    limits: HoldLimits | None = None,
) -> tuple[Hold, bool]:
    """Hold beds in one facility, all or nothing. Returns (hold, created_now).

    With ``registered_only`` (``CANALIZA_UNREGISTERED_MAY_RECEIVE_REFERRALS=0``) a facility
    not registered on SEGOB's roster cannot be held, so it cannot receive a referral.
    ``limits`` bound the hold's life and the institution's beds held at once (checked
    under the revision lock, so concurrent holds cannot pass the quota together).
    """
    limits = limits or HoldLimits()
    ttl = _check_ttl(data, default_ttl_minutes=default_ttl_minutes, limits=limits)
    digest = _request_hash(data)
    # Taken first so that concurrent requests with one Idempotency-Key queue up here and
    # the later ones find the earlier one's hold instead of creating a second.
    rev = bump_revision(session)
    if idempotency_key:
        existing = hold_by_key(session, created_by=principal.sub, idempotency_key=idempotency_key)
        if existing is not None:
            if existing.request_hash != digest:
                raise IdempotencyKeyReused(
                    "Esa clave de idempotencia ya se usó con otra petición; use una clave nueva."
                )
            return existing, False
    wanted: dict[str, int] = {}
    for alloc in data.allocations:
        wanted[alloc.pool_id] = wanted.get(alloc.pool_id, 0) + alloc.beds
    pools = pools_by_id(session, wanted)
    if any(pid not in pools for pid in wanted):
        raise PoolNotFound()
    facility = _holdable_facility(
        session, {p.facility_id for p in pools.values()}, registered_only=registered_only
    )
    now = utcnow()
    beds_wanted = sum(wanted.values())
    _check_quota(session, principal, beds=beds_wanted, now=now, limits=limits)
    hold = write_hold(
        session,
        principal=principal,
        facility=facility,
        pools=pools,
        wanted=wanted,
        rev=rev,
        expires_at=now + timedelta(minutes=ttl),
        reference=data.reference,
        people=[p.model_dump(mode="json") for p in data.people or []],
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    alert_on_concentration(
        session, principal, hold, facility, beds=beds_wanted, now=now, limits=limits
    )
    return hold, True


def write_hold(
    session: Session,
    *,
    principal: Principal,
    facility: Facility,
    pools: dict[str, Pool],
    wanted: dict[str, int],
    rev: int,
    expires_at: datetime,
    reference: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    operation_id: str | None = None,
    people: list[dict[str, Any]] | None = None,
) -> Hold:
    """Write one hold of ``wanted`` beds per pool of ``facility`` (under the revision lock
    the caller took): every pool's guarded update, its ledger entry, the events. A pool
    without the beds raises ``BedsUnavailable`` and the caller's transaction rolls back."""
    hold = Hold(
        facility_id=facility.id,
        reference=reference,
        people=list(people or []),
        created_by=principal.sub,
        institution_id=principal.institution_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        expires_at=expires_at,
        created_at=utcnow(),
        operation_id=operation_id,
    )
    session.add(hold)
    session.flush()
    ordered = sorted(wanted.items())
    for pool_id, beds in ordered:
        apply(
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
        emit_pool_changed(session, pools[pool_id], facility, principal)
    _emit_hold(session, hold, ordered, principal)
    return hold


def end_hold(
    session: Session,
    *,
    hold: Hold,
    status: HoldStatus,
    actor: Principal | None,
    rev: int,
    emit_pools: bool = True,
) -> None:
    """Release (released/expired) or admit (consumed) a hold's beds."""
    facility = get_facility(session, hold.facility_id)
    allocations = hold_allocations(session, hold.id)
    for alloc in allocations:
        pool = get_pool(session, alloc.pool_id)
        apply(
            session,
            pool=pool,
            kind="release",
            beds=alloc.beds,
            reason=f"reserva {hold.id} {_END_LABELS[status]}",
            actor=actor,
            rev=rev,
            hold_id=hold.id,
        )
        if status == HoldStatus.CONSUMED:
            apply(
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
            emit_pool_changed(session, pool, facility, actor)
    hold.status = status.value
    hold.ended_at = utcnow()
    hold.version += 1
    session.add(hold)
    session.flush()
    _emit_hold(session, hold, [(a.pool_id, a.beds) for a in allocations], actor)


def institution_holds(
    session: Session,
    *,
    institution_id: str | None,
    status: str | None,
    limit: int,
    after_key: tuple[Any, ...] | None = None,
) -> list[Hold]:
    """Up to ``limit + 1`` of an institution's holds, soonest to expire first, then by id
    (after ``after_key``); none for a caller of no institution."""
    if institution_id is None:
        return []
    query = select(Hold).where(col(Hold.institution_id) == institution_id)
    if status is not None:
        query = query.where(col(Hold.status) == status, col(Hold.expires_at) > utcnow())
    order = [col(Hold.expires_at), col(Hold.id)]
    if after_key is not None:
        query = query.where(after(order, after_key))
    query = query.order_by(*order).limit(limit + 1)
    return list(session.execute(query).scalars().all())


def hold_key(hold: Hold) -> tuple[Any, ...]:
    return (hold.expires_at, hold.id)


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
    if hold.status != HoldStatus.ACTIVE:
        return hold
    rev = bump_revision(session)
    session.refresh(hold)
    if hold.status == HoldStatus.ACTIVE:
        end_hold(session, hold=hold, status=HoldStatus.RELEASED, actor=principal, rev=rev)
    return hold


def release_facility_holds(
    session: Session, *, facility_id: str, actor: Principal, rev: int
) -> None:
    """A closing facility gives back every bed still held in it (its pools are told after)."""
    for hold in active_holds(session, facility_id=facility_id):
        end_hold(
            session, hold=hold, status=HoldStatus.RELEASED, actor=actor, rev=rev, emit_pools=False
        )


def consume_hold(session: Session, *, principal: Principal, hold_id: str) -> Hold:
    """Turn held beds into occupancy (the admission)."""
    hold = get_hold(session, hold_id)
    facility = get_facility(session, hold.facility_id)
    permissions.ensure_consume_hold(principal, operator_id=facility.operator_institution_id)
    rev = bump_revision(session)
    session.refresh(hold)  # under the revision lock: a concurrent release is visible now
    if hold.status == HoldStatus.CONSUMED:
        return hold
    if hold.status != HoldStatus.ACTIVE:
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
    end_hold(session, hold=hold, status=HoldStatus.CONSUMED, actor=principal, rev=rev)
    return hold


def expire_holds(session: Session, now: datetime | None = None) -> list[str]:
    """Release every active hold whose time is up; returns their ids."""
    now = now or utcnow()
    due = list(
        session.execute(
            select(Hold)
            .where(col(Hold.status) == HoldStatus.ACTIVE.value, col(Hold.expires_at) <= now)
            .order_by(col(Hold.expires_at))
            .limit(500)
        ).scalars()
    )
    if not due:
        return []
    rev = bump_revision(session)
    expired = []
    for hold in due:
        session.refresh(hold)
        if hold.status != HoldStatus.ACTIVE:
            continue
        end_hold(session, hold=hold, status=HoldStatus.EXPIRED, actor=None, rev=rev)
        expired.append(hold.id)
    return expired

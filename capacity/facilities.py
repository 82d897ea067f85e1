"""The roster: registering facilities (their address stored apart), editing them and
moving them along their lifecycle (registered → active ⇄ suspended → closed)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from capacity import permissions
from capacity.events import (
    emit_pool_changed,
    facility_created,
    facility_status_changed,
    facility_updated,
    record,
)
from capacity.exceptions import InvalidTransition
from capacity.holds import release_facility_holds
from capacity.ledger import bump_revision, touch_pool
from capacity.lookups import facility_pools, get_facility
from capacity.models import Facility, FacilityLocation, FacilityStatusChange
from capacity.schemas import ArrivalUpdate, FacilityCreate, FacilityUpdate
from services.clock import utcnow
from services.tokens import Principal
from services.vocabulary import FacilityStatus

TRANSITIONS: dict[str, tuple[str, ...]] = {
    FacilityStatus.REGISTERED: (FacilityStatus.ACTIVE, FacilityStatus.CLOSED),
    FacilityStatus.ACTIVE: (FacilityStatus.SUSPENDED, FacilityStatus.CLOSED),
    FacilityStatus.SUSPENDED: (FacilityStatus.ACTIVE, FacilityStatus.CLOSED),
    FacilityStatus.CLOSED: (),
}
REGISTERED_REASON = "alta en el padrón"
LOCATION_FIELDS = ("address", "latitude", "longitude")


def create_facility(session: Session, *, principal: Principal, data: FacilityCreate) -> Facility:
    """Register a facility on the roster (its address stored apart)."""
    now = utcnow()
    fields = data.model_dump(exclude={*LOCATION_FIELDS, "status"})
    facility = Facility(**fields, status=data.status, status_changed_at=now, created_at=now)
    facility.status_reason = REGISTERED_REASON
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
            reason=REGISTERED_REASON,
            actor=principal.sub,
            at=now,
        )
    )
    record(
        session,
        facility_created(facility),
        aggregate_id=facility.id,
        version=facility.version,
        actor=principal,
    )
    session.flush()
    return facility


def set_arrival(
    session: Session, *, principal: Principal, facility_id: str, data: ArrivalUpdate
) -> Facility:
    """The facility's contact and arrival instructions, set by its own staff."""
    facility = get_facility(session, facility_id)
    permissions.ensure_edit_pool(principal, facility.operator_institution_id)
    loc = _location(session, facility)
    loc.contact = data.contact.strip() if data.contact else None
    loc.arrival_instructions = (
        data.arrival_instructions.strip() if data.arrival_instructions else None
    )
    session.flush()
    return facility


def _location(session: Session, facility: Facility) -> FacilityLocation:
    """The facility's confidential location row, created (address empty) if it has none."""
    loc = session.get(FacilityLocation, facility.id)
    if loc is None:
        loc = FacilityLocation(facility_id=facility.id, address="")
        session.add(loc)
    return loc


def _check_transition(facility: Facility, status: str | None) -> None:
    if status is None:
        return
    if status == facility.status:
        raise InvalidTransition(
            f"La instalación ya está {FacilityStatus(status).label}.",
            extra={"from": facility.status, "to": status},
        )
    if status not in TRANSITIONS[facility.status]:
        raise InvalidTransition(
            f"Una instalación {FacilityStatus(facility.status).label} no puede pasar a "
            f"{FacilityStatus(status).label}.",
            extra={"from": facility.status, "to": status},
        )


def _edit(session: Session, facility: Facility, changes: dict[str, Any]) -> None:
    """Set the edited fields (a ``None`` clears only ``max_stay_days``) and the location."""
    location = {k: changes.pop(k) for k in LOCATION_FIELDS if k in changes}
    for key, value in changes.items():
        if value is None and key != "max_stay_days":
            continue
        setattr(facility, key, value)
    if location:
        loc = _location(session, facility)
        for key, value in location.items():
            setattr(loc, key, value if value is not None or key != "address" else loc.address)


def _move(
    session: Session, facility: Facility, *, status: str, reason: str | None, actor: Principal
) -> None:
    """Record one lifecycle step with its date and reason."""
    now = utcnow()
    session.add(
        FacilityStatusChange(
            facility_id=facility.id,
            from_status=facility.status,
            to_status=status,
            reason=reason or "",
            actor=actor.sub,
            at=now,
        )
    )
    facility.status = status
    facility.status_changed_at = now
    facility.status_reason = reason


def update_facility(
    session: Session, *, principal: Principal, facility_id: str, data: FacilityUpdate
) -> Facility:
    """Edit a facility and/or move it along its lifecycle (with date and reason)."""
    facility = get_facility(session, facility_id)
    changes = data.model_dump(exclude_unset=True)
    status = changes.pop("status", None)
    reason = changes.pop("reason", None)
    previous = facility.status
    _check_transition(facility, status)
    rev = bump_revision(session)
    _edit(session, facility, changes)
    if status is not None:
        _move(session, facility, status=status, reason=reason, actor=principal)
    facility.version += 1
    session.add(facility)
    session.flush()
    if status == FacilityStatus.CLOSED:
        release_facility_holds(session, facility_id=facility.id, actor=principal, rev=rev)
    # Every pool of the facility carries the facility's name and status: tell the feed.
    for pool in facility_pools(session, facility.id):
        touch_pool(session, pool, rev=rev)
        emit_pool_changed(session, pool, facility, principal)
    payload = (
        facility_status_changed(facility, previous=previous, reason=reason)
        if status is not None
        else facility_updated(facility)
    )
    record(session, payload, aggregate_id=facility.id, version=facility.version, actor=principal)
    return facility

"""Capacity's events: the one builder of each payload and the one way to record it.

Every payload is a contract of ``services.contracts.capacity``, built here and only here,
for the live path and the bulk import alike, and recorded with :func:`record` (the
service's outbox, in the caller's transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from capacity.database import SYSTEM_ACTOR, outbox
from capacity.ledger import available_of
from capacity.models import Facility, Hold, LedgerEntry, Pool, UnmetRequest
from services.clock import as_utc
from services.contracts import emit
from services.contracts.base import EventPayload
from services.contracts.capacity import (
    HOLD_EVENTS,
    AdmissionRecorded,
    Allocation,
    ChecklistVerdict,
    FacilityCreated,
    FacilityFields,
    FacilityStatusChanged,
    FacilityUpdated,
    HoldConcentrationAlert,
    HoldFields,
    PoolChanged,
    RegistrationReviewed,
    RegistrationSubmitted,
    RosterFacility,
    RosterImported,
    SearchUnmet,
    UnmetPerson,
)
from services.contracts.statistics import case_variables, person_variables, step_times
from services.events import Event
from services.tokens import Principal


def record(
    session: Session,
    payload: EventPayload,
    *,
    aggregate_id: str,
    version: int,
    actor: Principal | None,
) -> Event:
    """Append ``payload`` to the capacity outbox, in the session's transaction."""
    return emit(
        outbox,
        session,
        payload,
        aggregate_id=aggregate_id,
        principal=actor,
        version=version,
        system_actor=SYSTEM_ACTOR,
    )


def iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


# --- pools ------------------------------------------------------------------------------


def pool_changed(pool: Pool, facility: Facility) -> PoolChanged:
    """The pool as the live feed sees it (never the address)."""
    return PoolChanged(
        pool_id=pool.id,
        facility_id=facility.id,
        facility_name=facility.name,
        facility_kind=facility.kind,
        facility_status=facility.status,
        operator_institution_id=facility.operator_institution_id,
        state=facility.state,
        municipality=facility.municipality,
        version=pool.version,
        total=pool.total,
        occupied=pool.occupied,
        held=pool.held,
        out_of_service=pool.out_of_service,
        available=available_of(pool),
        sexes=list(pool.sexes),
        min_age=pool.min_age,
        max_age=pool.max_age,
        accepts_children=pool.accepts_children,
        max_child_age=pool.max_child_age,
        max_children=pool.max_children,
        accepts_witnesses=pool.accepts_witnesses,
        accepts_indirect_victims=pool.accepts_indirect_victims,
        wheelchair_accessible=pool.wheelchair_accessible,
        migrants=pool.migrants,
        lgbtttiq=pool.lgbtttiq,
        interpreter_languages=list(pool.interpreter_languages),
        last_confirmed_at=iso(pool.last_confirmed_at),
    )


def pool_snapshot(pool: Pool, facility: Facility) -> dict[str, Any]:
    """The pool as the live feed's snapshot lists it: the payload of its change event."""
    return pool_changed(pool, facility).model_dump(mode="json")


def emit_pool_changed(
    session: Session, pool: Pool, facility: Facility, actor: Principal | None
) -> None:
    record(
        session,
        pool_changed(pool, facility),
        aggregate_id=pool.id,
        version=pool.version,
        actor=actor,
    )


# --- facilities -------------------------------------------------------------------------


def _facility_fields(facility: Facility) -> dict[str, Any]:
    """What the facility events say about a facility (the one place that reads it)."""
    return FacilityFields(
        facility_id=facility.id,
        name=facility.name,
        kind=facility.kind,
        status=facility.status,
        registration_status=facility.registration_status,
        specialization=facility.specialization,
        services=list(facility.services),
        operator_institution_id=facility.operator_institution_id,
        state=facility.state,
        municipality=facility.municipality,
    ).model_dump()


def facility_created(facility: Facility) -> FacilityCreated:
    return FacilityCreated(**_facility_fields(facility))


def facility_updated(facility: Facility) -> FacilityUpdated:
    return FacilityUpdated(**_facility_fields(facility))


def facility_status_changed(
    facility: Facility, *, previous: str, reason: str | None
) -> EventPayload:
    payload: EventPayload = FacilityStatusChanged(
        **_facility_fields(facility), **{"from": previous, "reason": reason}
    )
    return payload


def registration_submitted(
    facility: Facility, *, attempt: int, note: str | None
) -> RegistrationSubmitted:
    return RegistrationSubmitted(
        **_facility_fields(facility), facility_name=facility.name, attempt=attempt, note=note
    )


def registration_reviewed(
    facility: Facility,
    *,
    outcome: str,
    observations: str | None,
    unmet: list[str],
    checklist: Sequence[dict[str, Any]],
) -> RegistrationReviewed:
    return RegistrationReviewed(
        **_facility_fields(facility),
        facility_name=facility.name,
        outcome=outcome,
        observations=observations,
        unmet=unmet,
        checklist=[ChecklistVerdict(item=c["item"], met=c["met"]) for c in checklist],
    )


def roster_facility(facility: Facility) -> RosterFacility:
    return RosterFacility(**_facility_fields(facility))


def roster_imported(
    facilities: Sequence[Facility], pools: Sequence[tuple[Pool, Facility]]
) -> RosterImported:
    """One roster batch: each new facility and each new pool as its change event says it."""
    return RosterImported(
        facilities=[roster_facility(f) for f in facilities],
        pools=[pool_changed(pool, facility) for pool, facility in pools],
    )


# --- holds ------------------------------------------------------------------------------


def hold_event(hold: Hold, allocations: Sequence[tuple[str, int]]) -> HoldFields:
    """The event of a hold entering its status (created, released, expired, consumed)."""
    return HOLD_EVENTS[hold.status](
        hold_id=hold.id,
        facility_id=hold.facility_id,
        status=hold.status,
        allocations=[Allocation(pool_id=p, beds=b) for p, b in allocations],
        expires_at=iso(hold.expires_at),
    )


def hold_concentration_alert(
    *, institution_id: str, state: str, held: int, capacity: int, threshold: float, hold_id: str
) -> HoldConcentrationAlert:
    """SEGOB's alert: one institution holds more than ``threshold`` of a state's beds."""
    return HoldConcentrationAlert(
        institution_id=institution_id,
        state=state,
        held=held,
        capacity=capacity,
        share=round(held / capacity, 4),
        threshold=threshold,
        hold_id=hold_id,
    )


# --- admissions entered on the ledger ---------------------------------------------------


def admission_recorded(pool: Pool, facility: Facility, entry: LedgerEntry) -> AdmissionRecorded:
    """Who a client ``admit`` entry admitted: one person per bed, S.I. where not said."""
    said = list(entry.people or [])
    people = [
        person_variables(
            sex=(said[i].get("sex") if i < len(said) else None),
            age_band=(said[i].get("age_band") if i < len(said) else None),
        )
        for i in range(entry.beds)
    ]
    return AdmissionRecorded(
        **case_variables(
            sending_institution_id=None,
            receiving_institution_id=facility.operator_institution_id,
            facility_id=facility.id,
            state=facility.state,
            steps=step_times([("admitted", entry.at)]),
            people=people,
        ),
        pool_id=pool.id,
        entry_seq=entry.seq or 0,
        facility_kind=facility.kind,
    )


# --- unmet demand -----------------------------------------------------------------------


def search_unmet(
    row: UnmetRequest, *, people: Sequence[dict[str, Any]], age_band: str | None
) -> SearchUnmet:
    return SearchUnmet(
        unmet_id=row.id,
        intent_key=row.intent_key,
        needs=row.needs,
        sex=row.sex,
        age_group=row.age_group,
        age_band=age_band,
        state=row.state,
        group_size=row.group_size,
        people=[UnmetPerson(**p) for p in people],
        code=row.code,
        reason=row.reason,
    )

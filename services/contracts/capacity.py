"""Typed contracts of the events the capacity service produces (see services.contracts.base).

Each payload is built by one function in ``capacity/events.py``; the JSON is what the
consumers (audit trail, live feed, web UI, statistics) have always read. A facility's
name is not sensitive; no capacity event carries a facility's address or coordinates
(those stay in ``facility_location``) nor anyone's identity (people are categories).
"""

from __future__ import annotations

from pydantic import BaseModel, create_model

from services.contracts.base import EventPayload, contract
from services.contracts.statistics import CaseVariables

# --- pools ------------------------------------------------------------------------------


@contract("capacity.pool.changed", aggregate="pool")
class PoolChanged(EventPayload):
    """A pool as the live feed sees it (its facility's name and status, never the address)."""

    pool_id: str
    facility_id: str
    facility_name: str
    facility_kind: str
    facility_status: str
    operator_institution_id: str
    state: str
    municipality: str
    version: int
    total: int
    occupied: int
    held: int
    out_of_service: int
    available: int
    sexes: list[str]
    min_age: int
    max_age: int
    accepts_children: bool
    max_child_age: int
    max_children: int
    accepts_witnesses: bool
    accepts_indirect_victims: bool
    wheelchair_accessible: bool
    migrants: bool
    lgbtttiq: bool
    interpreter_languages: list[str]
    last_confirmed_at: str | None


@contract("capacity.admission.recorded", aggregate="pool")
class AdmissionRecorded(CaseVariables):
    """People admitted by a coordinator's ledger entry (+1 on the shelter's screen), with
    the same minimum variables as a referral (S.I. where the coordinator did not say);
    the receiving institution is the facility's operator, nobody sent them."""

    pool_id: str
    entry_seq: int
    facility_kind: str


# --- facilities -------------------------------------------------------------------------


class FacilityFields(EventPayload):
    """What every ``capacity.facility.*`` lifecycle event says about the facility."""

    facility_id: str
    name: str
    kind: str
    status: str
    registration_status: str
    specialization: str
    services: list[str]
    operator_institution_id: str
    state: str
    municipality: str


@contract("capacity.facility.created", aggregate="facility")
class FacilityCreated(FacilityFields):
    pass


@contract("capacity.facility.updated", aggregate="facility")
class FacilityUpdated(FacilityFields):
    pass


# ``from`` is a Python keyword: the field is declared by name so the JSON key stays "from".
FacilityStatusChanged = contract("capacity.facility.status_changed", aggregate="facility")(
    create_model(
        "FacilityStatusChanged",
        __base__=FacilityFields,
        __module__=__name__,
        **{"from": (str | None, None), "reason": (str | None, None)},  # type: ignore[call-overload]
    )
)


class RegistrationFields(EventPayload):
    """What the registration events say about the facility."""

    facility_id: str
    facility_name: str
    kind: str
    status: str
    registration_status: str
    operator_institution_id: str
    state: str
    municipality: str


@contract("capacity.facility.registration_submitted", aggregate="facility")
class RegistrationSubmitted(RegistrationFields):
    attempt: int
    note: str | None


class ChecklistVerdict(BaseModel):
    item: str
    met: bool


@contract("capacity.facility.registration_reviewed", aggregate="facility")
class RegistrationReviewed(RegistrationFields):
    outcome: str
    observations: str | None
    unmet: list[str]
    checklist: list[ChecklistVerdict]


# --- holds ------------------------------------------------------------------------------


class Allocation(BaseModel):
    pool_id: str
    beds: int


class HoldFields(EventPayload):
    hold_id: str
    facility_id: str
    status: str
    allocations: list[Allocation]
    expires_at: str | None


@contract("capacity.hold.created", aggregate="hold")
class HoldCreated(HoldFields):
    pass


@contract("capacity.hold.released", aggregate="hold")
class HoldReleased(HoldFields):
    pass


@contract("capacity.hold.expired", aggregate="hold")
class HoldExpired(HoldFields):
    pass


@contract("capacity.hold.consumed", aggregate="hold")
class HoldConsumed(HoldFields):
    pass


# The event of a hold in each status (a hold's event is named after the status it enters).
HOLD_EVENTS: dict[str, type[HoldFields]] = {
    "active": HoldCreated,
    "released": HoldReleased,
    "expired": HoldExpired,
    "consumed": HoldConsumed,
}


@contract("capacity.hold.concentration_alert", aggregate="institution")
class HoldConcentrationAlert(EventPayload):
    """For SEGOB: one institution now holds more than ``threshold`` of a state's free and
    held beds (emitted once per crossing, by the hold that crossed it). Resource capture
    (issue 20): an account holding a state's refuges empty keeps victims out of them."""

    institution_id: str
    state: str
    held: int
    # Free + held beds of the state's active facilities, after the hold.
    capacity: int
    share: float
    threshold: float
    hold_id: str


# --- unmet demand -----------------------------------------------------------------------


class UnmetPerson(BaseModel):
    """One person of a search nobody could answer, by category only."""

    sex: str | None  # None: not recorded (S.I.)
    age_group: str
    # The CNDH age group (statistics).
    age_band: str
    role: str


@contract("capacity.search.unmet", aggregate="unmet_request")
class SearchUnmet(EventPayload):
    unmet_id: str
    # The search intent it answers (one prosecutor's case): statistics count it once.
    intent_key: str | None = None
    needs: dict[str, object] | None = None
    sex: str | None  # None: not recorded (S.I.)
    age_group: str
    # The CNDH age group of the person nobody could take (statistics).
    age_band: str | None
    state: str | None
    group_size: int
    people: list[UnmetPerson]
    code: str
    reason: str


# --- bulk import of the roster ----------------------------------------------------------


class RosterFacility(EventPayload):
    """A facility as a roster-import batch lists it."""

    facility_id: str
    name: str
    kind: str
    status: str
    operator_institution_id: str
    state: str
    municipality: str


@contract("capacity.roster.imported", aggregate="roster")
class RosterImported(EventPayload):
    """One batch of the roster: every new facility and every new pool's snapshot."""

    facilities: list[RosterFacility]
    pools: list[PoolChanged]

"""The payload of every event the referral service emits, each built by one function here.

The contracts are in ``services.contracts.referral``; the lifecycle, the agreement and
institution rules and the history importer all build their payloads with these functions
and record them with ``services.contracts.emit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from referral.catalogue import age_group
from referral.models import (
    Agreement,
    FollowUp,
    Institution,
    MigrationRoute,
    Obligation,
    Referral,
    ReferralPerson,
    ServiceProvided,
    StayExtension,
)
from services.clock import as_utc
from services.contracts.referral import (
    REFERRAL_CHANGES,
    AddressDisclosed,
    AgreementCreated,
    AgreementPartySigned,
    AgreementRefused,
    AgreementRevoked,
    AgreementSigned,
    FollowUpRecorded,
    IdentityDisclosed,
    InstitutionCreated,
    InstitutionUpdated,
    MigrationRouteRecorded,
    ObligationFulfilled,
    PlacedWithoutAgreement,
    ReferralChanged,
    ReferralDeclined,
    ReferralDischarged,
    ServiceProvidedRecorded,
    StayExtended,
)
from services.contracts.statistics import (
    PersonVariables,
    case_variables,
    case_variables_data,
    person_variables,
    person_variables_data,
)
from services.tokens import Principal
from services.vocabulary import InstitutionType, Outcome, ReferralStatus, Sex


class Person(Protocol):
    """What the events tell of a person: a stored one or a historical one."""

    @property
    def sex(self) -> str | None: ...
    @property
    def age(self) -> int | None: ...
    @property
    def nationality(self) -> str | None: ...
    @property
    def role(self) -> str: ...
    @property
    def state_of_origin(self) -> str | None: ...
    @property
    def vulnerable_groups(self) -> Sequence[str] | None: ...
    @property
    def offences(self) -> Sequence[str]: ...
    @property
    def person_key(self) -> str | None: ...


# --- institutions ---------------------------------------------------------------------------


def institution_created(inst: Institution) -> InstitutionCreated:
    return InstitutionCreated(
        id=inst.id,
        name=inst.name,
        type=InstitutionType(inst.type),
        state=inst.state,
    )


def institution_updated(inst: Institution) -> InstitutionUpdated:
    return InstitutionUpdated(id=inst.id, name=inst.name)


# --- agreements -----------------------------------------------------------------------------


def agreement_created(agreement: Agreement, party_ids: list[str]) -> AgreementCreated:
    return AgreementCreated(id=agreement.id, number=agreement.number, party_ids=party_ids)


def agreement_signature(
    agreement: Agreement, *, institution_id: str, all_signed: bool
) -> AgreementSigned | AgreementPartySigned:
    model = AgreementSigned if all_signed else AgreementPartySigned
    return model(id=agreement.id, institution_id=institution_id, status=agreement.status)


def agreement_revoked(agreement: Agreement) -> AgreementRevoked:
    return AgreementRevoked(id=agreement.id, status="revoked")


def agreement_refused(referral: Referral, *, missing: str) -> AgreementRefused:
    return AgreementRefused(
        referral_id=referral.id,
        sending_institution_id=referral.sending_institution_id,
        receiving_institution_id=referral.receiving_institution_id,
        missing=missing,
    )


# --- referrals ------------------------------------------------------------------------------


def _facts(p: Person) -> dict[str, Any]:
    """What the minimum variables are made of, read off a person (but its key)."""
    return {
        "sex": p.sex,
        "age": p.age,
        "nationality": p.nationality,
        "role": p.role,
        "state_of_origin": p.state_of_origin,
        "vulnerable_groups": p.vulnerable_groups,
        "offences": p.offences,
    }


def person_facts(p: Person) -> PersonVariables:
    """A person's minimum variables (stored or historical), as every referral event
    carries them."""
    return person_variables(**_facts(p), person_key=p.person_key)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def referral_changed(
    referral: Referral,
    people: Sequence[ReferralPerson],
    what: str,
    steps: Mapping[str, str] | None = None,
) -> ReferralChanged:
    """``referral.referral.<what>``: ``created``, a lifecycle action, or ``expired``;
    ``steps`` the time each status began (``records.step_times``)."""
    model = REFERRAL_CHANGES[what]
    fields: dict[str, Any] = {
        **case_variables(
            sending_institution_id=referral.sending_institution_id,
            receiving_institution_id=referral.receiving_institution_id,
            facility_id=referral.facility_id,
            state=referral.state,
            steps=steps or {},
            people=[person_facts(p) for p in people],
            detection_source=referral.detection_source,
        ),
        "referral_id": referral.id,
        "status": referral.status,
        "urgency": referral.urgency,
        "services": list(referral.services or []),
        "sent_at": _iso(referral.sent_at),
        "response_due_at": _iso(referral.response_due_at),
        "without_agreement": referral.without_agreement,
        "previous_referral_id": referral.previous_referral_id,
        "hold_id": referral.hold_id,
        "operation_id": referral.operation_id,
    }
    if model is ReferralDischarged:
        fields["outcome"] = referral.outcome
        fields["outcome_country"] = referral.outcome_country
    if model is ReferralDeclined:
        fields["reason"] = referral.decline_reason
    return model(**fields)


def placed_without_agreement(referral: Referral) -> PlacedWithoutAgreement:
    return PlacedWithoutAgreement(
        referral_id=referral.id,
        sending_institution_id=referral.sending_institution_id,
        receiving_institution_id=referral.receiving_institution_id,
        facility_id=referral.facility_id,
        state=referral.state,
        previous_referral_id=referral.previous_referral_id,
    )


def obligation_fulfilled(referral: Referral, obligation: Obligation) -> ObligationFulfilled:
    return ObligationFulfilled(
        referral_id=referral.id,
        obligation_id=obligation.id,
        kind=obligation.kind,
        humanitarian_visa_status=obligation.humanitarian_visa_status,
    )


def migration_route_recorded(
    referral: Referral, person: ReferralPerson, route: MigrationRoute
) -> MigrationRouteRecorded:
    return MigrationRouteRecorded(
        referral_id=referral.id,
        person_id=person.id,
        route=route.route,
        status=route.status,
        nationality=person.nationality,
        sex=Sex(person.sex) if person.sex else None,
        age_group=age_group(person.age),
        state=referral.state,
        institution_id=route.institution_id,
        humanitarian_visa_issued=bool(route.humanitarian_visa_number),
        consular_contact_consent=route.consular_contact_consent,
        migration_station_days=route.migration_station_days,
        return_country=route.return_country,
        risk_assessment_recorded=route.risk_assessment_on is not None,
    )


def stay_extended(referral: Referral, extension: StayExtension) -> StayExtended:
    return StayExtended(
        referral_id=referral.id,
        facility_id=referral.facility_id,
        days=extension.days,
        reason=extension.reason,
    )


def follow_up_recorded(referral: Referral, follow_up: FollowUp) -> FollowUpRecorded:
    return FollowUpRecorded(
        referral_id=referral.id,
        facility_id=referral.facility_id,
        due_on=follow_up.due_on.isoformat(),
        done_on=follow_up.done_on.isoformat() if follow_up.done_on else None,
        result=follow_up.result,
    )


def service_provided(referral: Referral, service: ServiceProvided) -> ServiceProvidedRecorded:
    return ServiceProvidedRecorded(
        referral_id=referral.id,
        facility_id=referral.facility_id,
        service=service.service,
        provided_on=service.provided_on.isoformat(),
    )


def disclosure(
    referral: Referral, *, principal: Principal, what: str
) -> AddressDisclosed | IdentityDisclosed:
    """Who learnt a referral's ``address`` or ``identity``: never the secret itself."""
    model = AddressDisclosed if what == "address" else IdentityDisclosed
    return model(
        referral_id=referral.id,
        disclosed_to_institution_id=principal.institution_id,
        facility_id=referral.facility_id,
    )


# --- the history importer -------------------------------------------------------------------


class Historical(Protocol):
    @property
    def sending_institution_id(self) -> str: ...
    @property
    def receiving_institution_id(self) -> str: ...
    @property
    def facility_id(self) -> str: ...
    @property
    def urgency(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def people(self) -> Sequence[Person]: ...


def imported_referral(
    referral_id: str,
    status: str,
    r: Historical,
    outcome: str | None,
    *,
    state: str | None,
    steps: Mapping[str, str],
    person_keys: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """One imported referral as the audit trail sees it: the lifecycle events' minimum
    variables (people, state, the time of every step), as the JSON data of an
    ``ImportedReferral`` (a batch holds thousands: built as data, not as models; the
    contract's model would dump exactly this). ``person_keys`` replace the people's own."""
    keys = [p.person_key for p in r.people] if person_keys is None else person_keys
    data = case_variables_data(
        sending_institution_id=r.sending_institution_id,
        receiving_institution_id=r.receiving_institution_id,
        facility_id=r.facility_id,
        state=state,
        steps=steps,
        people=[
            person_variables_data(**_facts(p), person_key=key)
            for p, key in zip(r.people, keys, strict=True)
        ],
    )
    data["referral_id"] = referral_id
    data["status"] = ReferralStatus(status).value
    data["urgency"] = r.urgency
    data["created_on"] = r.created_at.date().isoformat()
    if outcome:  # a referral without an outcome has no "outcome" key at all
        data["outcome"] = Outcome(outcome).value
    return data


def history_imported(referrals: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The payload of ``referral.history.imported`` (``HistoryImported``) as JSON data."""
    return {"referrals": list(referrals)}

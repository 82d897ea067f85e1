"""The payload of every event the referral service emits, each built by one function here.

The contracts are in ``services.contracts.referral``; the lifecycle, the agreement and
institution rules and the history importer all build their payloads with these functions
and record them with ``services.contracts.emit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from referral.catalogue import age_group
from referral.models import Agreement, Institution, Obligation, Referral, ReferralPerson
from services.clock import as_utc
from services.contracts.referral import (
    REFERRAL_CHANGES,
    AddressDisclosed,
    AgreementCreated,
    AgreementPartySigned,
    AgreementRefused,
    AgreementRevoked,
    AgreementSigned,
    HistoryImported,
    IdentityDisclosed,
    ImportedReferral,
    InstitutionCreated,
    InstitutionUpdated,
    ObligationFulfilled,
    PersonFacts,
    ReferralChanged,
    ReferralDeclined,
    ReferralDischarged,
    ReferralPersonFacts,
)
from services.tokens import Principal
from services.vocabulary import InstitutionType, Outcome, ReferralStatus, cndh_age_band


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
    return {
        "sex": p.sex,
        "age_group": age_group(p.age),
        "age_band": cndh_age_band(p.age),
        "nationality": p.nationality,
        "role": p.role,
    }


def person_facts(p: Person) -> PersonFacts:
    """The de-identified facts of a person, as the history importer announces them."""
    return PersonFacts(**_facts(p))


def referral_person_facts(p: ReferralPerson) -> ReferralPersonFacts:
    """A stored person's facts, as the lifecycle events carry them."""
    return ReferralPersonFacts(
        **_facts(p),
        state_of_origin=p.state_of_origin,
        vulnerable_groups=list(p.vulnerable_groups or []),
        offences=list(p.offences or []),
    )


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def referral_changed(
    referral: Referral, people: Sequence[ReferralPerson], what: str
) -> ReferralChanged:
    """``referral.referral.<what>``: ``created``, a lifecycle action, or ``expired``."""
    model = REFERRAL_CHANGES[what]
    fields: dict[str, Any] = {
        "referral_id": referral.id,
        "status": referral.status,
        "sending_institution_id": referral.sending_institution_id,
        "receiving_institution_id": referral.receiving_institution_id,
        "facility_id": referral.facility_id,
        "urgency": referral.urgency,
        "state": referral.state,
        "services": list(referral.services or []),
        "sent_at": _iso(referral.sent_at),
        "response_due_at": _iso(referral.response_due_at),
        "people": [referral_person_facts(p) for p in people],
    }
    if model is ReferralDischarged:
        fields["outcome"] = referral.outcome
    if model is ReferralDeclined:
        fields["reason"] = referral.decline_reason
    return model(**fields)


def obligation_fulfilled(referral: Referral, obligation: Obligation) -> ObligationFulfilled:
    return ObligationFulfilled(
        referral_id=referral.id, obligation_id=obligation.id, kind=obligation.kind
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
    referral_id: str, status: str, r: Historical, outcome: str | None
) -> ImportedReferral:
    """One imported referral as the audit trail sees it (the lifecycle events' fields)."""
    return ImportedReferral(
        referral_id=referral_id,
        status=ReferralStatus(status),
        sending_institution_id=r.sending_institution_id,
        receiving_institution_id=r.receiving_institution_id,
        facility_id=r.facility_id,
        urgency=r.urgency,
        created_on=r.created_at.date().isoformat(),
        people=[person_facts(p) for p in r.people],
        outcome=Outcome(outcome) if outcome else None,
    )


def history_imported(referrals: Iterable[ImportedReferral]) -> HistoryImported:
    return HistoryImported(referrals=list(referrals))

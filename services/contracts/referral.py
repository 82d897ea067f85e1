"""Typed contracts of the events the referral service produces (see services.contracts.base).

Each payload is built by one function of ``referral.events``; the history importer uses the
same builders as the live lifecycle. No referral payload names a person or locates a refuge
(people travel as de-identified facts, facilities by id), so no field is ``Sensitive``. An
institution's name is not a person's: it travels as ``name`` and the trail keeps it.
"""

from __future__ import annotations

from typing import Any

from pydantic import SerializerFunctionWrapHandler, model_serializer

from services.contracts.base import EventPayload, contract
from services.contracts.statistics import CaseVariables, PersonVariables
from services.vocabulary import InstitutionType, Outcome, ReferralStatus, Sex

# --- institutions ---------------------------------------------------------------------------


@contract("referral.institution.created", aggregate="institution")
class InstitutionCreated(EventPayload):
    id: str
    name: str
    type: InstitutionType
    state: str


@contract("referral.institution.updated", aggregate="institution")
class InstitutionUpdated(EventPayload):
    id: str
    name: str


# --- agreements -----------------------------------------------------------------------------


@contract("referral.agreement.created", aggregate="agreement")
class AgreementCreated(EventPayload):
    id: str
    number: str
    party_ids: list[str]


class _AgreementSignature(EventPayload):
    id: str
    institution_id: str
    status: str


@contract("referral.agreement.party_signed", aggregate="agreement")
class AgreementPartySigned(_AgreementSignature):
    """One party signed; others have not yet."""


@contract("referral.agreement.signed", aggregate="agreement")
class AgreementSigned(_AgreementSignature):
    """The last party signed: the agreement is in force within its validity."""


@contract("referral.agreement.revoked", aggregate="agreement")
class AgreementRevoked(EventPayload):
    id: str
    status: str


@contract("referral.agreement.refused", aggregate="referral")
class AgreementRefused(EventPayload):
    """A send refused for want of an applicable agreement (``missing``: what was lacking)."""

    referral_id: str
    sending_institution_id: str
    receiving_institution_id: str
    missing: str


# --- referrals ------------------------------------------------------------------------------


# The de-identified facts of one person every referral event carries: the minimum
# variables of ``services.contracts.statistics`` (one builder for every producer).
PersonFacts = PersonVariables
ReferralPersonFacts = PersonVariables


class ReferralChanged(CaseVariables):
    """A referral was created or moved along its lifecycle (the type says which step).

    The minimum variables (institutions, facility, state, people, ``steps``) are
    :class:`CaseVariables`; the rest is the referral's own."""

    referral_id: str
    status: ReferralStatus
    sending_institution_id: str
    receiving_institution_id: str
    urgency: str
    services: list[str]
    sent_at: str | None
    # The answer deadline: statistics count "no information" outcomes against it.
    response_due_at: str | None
    # Added by issue 17 (ADR 0021); absent from older events, read with these defaults.
    without_agreement: bool = False
    previous_referral_id: str | None = None  # an onward transfer: the same people
    # The hold it names and the rescue operation it comes from (issue 16), if any.
    hold_id: str | None = None
    operation_id: str | None = None


@contract("referral.referral.created", aggregate="referral")
class ReferralCreated(ReferralChanged):
    pass


@contract("referral.referral.send", aggregate="referral")
class ReferralSent(ReferralChanged):
    pass


@contract("referral.referral.accept", aggregate="referral")
class ReferralAccepted(ReferralChanged):
    pass


@contract("referral.referral.decline", aggregate="referral")
class ReferralDeclined(ReferralChanged):
    # The receiving shelter's reason, as it wrote it (the bitácora reads it to SEGOB).
    reason: str | None = None


@contract("referral.referral.in_transit", aggregate="referral")
class ReferralInTransit(ReferralChanged):
    pass


@contract("referral.referral.admit", aggregate="referral")
class ReferralAdmitted(ReferralChanged):
    pass


@contract("referral.referral.discharge", aggregate="referral")
class ReferralDischarged(ReferralChanged):
    outcome: Outcome | None
    # The country of an assisted return (ADR 0022); None for any other outcome.
    outcome_country: str | None = None


@contract("referral.referral.cancel", aggregate="referral")
class ReferralCancelled(ReferralChanged):
    pass


@contract("referral.referral.expired", aggregate="referral")
class ReferralExpired(ReferralChanged):
    pass


REFERRAL_CHANGES: dict[str, type[ReferralChanged]] = {
    "created": ReferralCreated,
    "send": ReferralSent,
    "accept": ReferralAccepted,
    "decline": ReferralDeclined,
    "in_transit": ReferralInTransit,
    "admit": ReferralAdmitted,
    "discharge": ReferralDischarged,
    "cancel": ReferralCancelled,
    "expired": ReferralExpired,
}
"""The contract of each step (``referral.referral.<step>``)."""


@contract("referral.placement.without_agreement", aggregate="referral")
class PlacedWithoutAgreement(EventPayload):
    """An urgent referral sent along no agreement (ADR 0021): counted for SEGOB by sender,
    receiver and month, and an alert to both institutions' admins to formalise one. The
    justification is the sender's prose and stays in the referral service."""

    referral_id: str
    sending_institution_id: str
    receiving_institution_id: str
    facility_id: str
    state: str | None
    previous_referral_id: str | None


@contract("referral.obligation.fulfilled", aggregate="referral")
class ObligationFulfilled(EventPayload):
    referral_id: str
    obligation_id: str
    kind: str
    # The INM's: where the humanitarian visa stands (the INM table counts visas granted).
    humanitarian_visa_status: str | None = None


@contract("referral.migration_route.recorded", aggregate="referral")
class MigrationRouteRecorded(EventPayload):
    """A foreign person's migration route chosen or moved on (ADR 0022). Never the visa
    number nor the assessment's text: whether a visa was issued, whether an assessment was
    recorded."""

    referral_id: str
    person_id: str
    route: str
    status: str
    nationality: str | None
    sex: Sex | None
    age_group: str
    state: str | None
    institution_id: str | None
    humanitarian_visa_issued: bool
    consular_contact_consent: bool | None
    migration_station_days: int | None
    return_country: str | None
    risk_assessment_recorded: bool


@contract("referral.stay.extended", aggregate="referral")
class StayExtended(EventPayload):
    referral_id: str
    facility_id: str
    days: int
    reason: str


@contract("referral.follow_up.recorded", aggregate="referral")
class FollowUpRecorded(EventPayload):
    """A follow-up contact after discharge planned (no result yet) or done."""

    referral_id: str
    facility_id: str
    due_on: str
    done_on: str | None
    result: str | None


@contract("referral.service.provided", aggregate="referral")
class ServiceProvidedRecorded(EventPayload):
    """A service given to an admitted person: the monthly per-facility report counts it."""

    referral_id: str
    facility_id: str
    service: str
    provided_on: str


class _Disclosure(EventPayload):
    """Who learnt what about a referral, never the secret itself."""

    referral_id: str
    disclosed_to_institution_id: str | None
    facility_id: str


@contract("referral.disclosure.address", aggregate="referral")
class AddressDisclosed(_Disclosure):
    pass


@contract("referral.disclosure.identity", aggregate="referral")
class IdentityDisclosed(_Disclosure):
    pass


# --- the history importer -------------------------------------------------------------------


class ImportedReferral(CaseVariables):
    """One imported referral as the audit trail sees it: the same minimum variables as the
    lifecycle events (people, state, the time of every step)."""

    referral_id: str
    status: ReferralStatus
    sending_institution_id: str
    receiving_institution_id: str
    urgency: str
    created_on: str
    outcome: Outcome | None = None

    @model_serializer(mode="wrap")
    def _without_absent_outcome(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A referral without an outcome has no "outcome" key at all (as always).
        data = handler(self)
        if isinstance(data, dict) and data.get("outcome") is None:
            data.pop("outcome", None)
        return data


@contract("referral.history.imported", aggregate="referral_history")
class HistoryImported(EventPayload):
    referrals: list[ImportedReferral]

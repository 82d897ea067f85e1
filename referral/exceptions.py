"""Domain errors of the referral service."""

from __future__ import annotations

from services.errors import Conflict, Forbidden, NotFound, PreconditionFailed, Unprocessable


class InstitutionNotFound(NotFound):
    code = "institution_not_found"


class AgreementNotFound(NotFound):
    code = "agreement_not_found"


class ReferralNotFound(NotFound):
    code = "referral_not_found"


class NoAgreement(Forbidden):
    code = "no_agreement"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class HoldNotActive(Conflict):
    """The hold a referral names was released, expired or used."""

    code = "hold_not_active"


class HoldOfAnotherInstitution(Forbidden):
    code = "hold_of_another_institution"


class ActionInProgress(Conflict):
    """Another lifecycle action holds the referral's claim, or won the race for it."""

    code = "action_in_progress"


class StaleVersion(PreconditionFailed):
    code = "stale_version"


class IdempotencyMismatch(Unprocessable):
    code = "idempotency_key_reused"


class NotPermitted(Forbidden):
    code = "forbidden"

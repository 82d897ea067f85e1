"""The obligations the law brings in for a referral's people, and their fulfilment."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from referral import catalogue, events, permissions
from referral.database import outbox
from referral.exceptions import ReferralNotFound
from referral.institutions import first_institution
from referral.models import Obligation, Referral, ReferralPerson
from referral.records import get_referral
from referral.schemas import FulfilBody
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal
from services.vocabulary import InstitutionType, PersonRole

# Which institution (by type, first found) attends each obligation.
DIF_TYPES = (InstitutionType.DIF_ESTATAL, InstitutionType.DIF_NACIONAL)
INM_TYPES = (InstitutionType.INM,)
CEAV_TYPES = (InstitutionType.CEAV,)


def derive_obligations(
    session: Session, referral: Referral, people: Sequence[ReferralPerson]
) -> list[Obligation]:
    """The institutions the law brings in for these people."""
    now = utcnow()
    obligations: list[Obligation] = []
    if any(catalogue.age_group(p.age) == "minors" for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="dif_child_protection",
                institution_id=first_institution(session, *DIF_TYPES, state=referral.state),
                created_at=now,
            )
        )
    if any(catalogue.is_recorded_foreign(p.nationality) for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="inm_migration_status",
                institution_id=first_institution(session, *INM_TYPES),
                humanitarian_visa_status="not_started",
                created_at=now,
            )
        )
    if any(p.nationality is None for p in people):
        # Not recorded is not Mexican: the sender confirms it before anyone tells the INM.
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="nationality_unconfirmed",
                institution_id=referral.sending_institution_id,
                created_at=now,
            )
        )
    if any(p.role == PersonRole.VICTIM for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="ceav_registration",
                institution_id=first_institution(session, *CEAV_TYPES),
                created_at=now,
            )
        )
    if referral.witness_protection:
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="witness_protection",
                institution_id=referral.sending_institution_id,
                created_at=now,
            )
        )
    return obligations


def fulfil_obligation(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    obligation_id: str,
    body: FulfilBody,
) -> Obligation:
    """An institution acknowledges (fulfils) its obligation on a referral."""
    referral = get_referral(session, referral_id=referral_id)
    obligation = session.get(Obligation, obligation_id)
    if obligation is None or obligation.referral_id != referral.id:
        raise ReferralNotFound("No existe esa obligación en la canalización.")
    permissions.ensure_can_fulfil(principal, obligation.kind, obligation.institution_id)
    if body.humanitarian_visa_status and obligation.kind != "inm_migration_status":
        raise Unprocessable(
            "El estado de visa humanitaria solo aplica a la obligación del INM.",
            code="not_applicable",
        )
    if obligation.status == "fulfilled" and not body.humanitarian_visa_status:
        raise Conflict("La obligación ya está atendida.", code="already_fulfilled")
    if body.humanitarian_visa_status:
        obligation.humanitarian_visa_status = body.humanitarian_visa_status
    obligation.status = "fulfilled"
    obligation.fulfilled_at = utcnow()
    obligation.fulfilled_by = principal.sub
    obligation.note = body.note
    session.add(obligation)
    emit(
        outbox,
        session,
        events.obligation_fulfilled(referral, obligation),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )
    session.flush()
    return obligation

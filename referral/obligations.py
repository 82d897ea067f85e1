"""The obligations the law brings in for a referral's people, and their fulfilment."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from referral import catalogue, events, permissions
from referral.database import outbox
from referral.exceptions import ReferralNotFound
from referral.institutions import candidates, first_institution
from referral.models import Institution, Obligation, Referral, ReferralPerson
from referral.records import get_referral
from referral.schemas import FulfilBody
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal
from services.vocabulary import InstitutionType, PersonRole

# Which institution (by type, first found) attends each obligation.
DIF_TYPES = (InstitutionType.DIF_ESTATAL, InstitutionType.DIF_NACIONAL)
# The state commission (CEEAV) of the referral's state where one exists, else the CEAV.
CEAV_TYPES = (InstitutionType.CEEAV, InstitutionType.CEAV)
# Victims the CEAV/CEEAV registers and attends: direct and indirect (003:175, 203).
CEAV_ROLES = (PersonRole.VICTIM, PersonRole.INDIRECT_VICTIM)


def inm_office(session: Session, state: str | None) -> str | None:
    """The INM office that attends a referral (see :func:`inm_office_of`)."""
    return inm_office_of(candidates(session, InstitutionType.INM), state)


def inm_office_of(institutions: Sequence[Institution], state: str | None) -> str | None:
    """Among ``institutions`` (oldest first), the INM office that attends a referral: the
    regional office (an ``inm`` institution under another, ``parent_id`` set) of the
    referral's state, else the national INM, else the oldest INM institution."""
    offices = [i for i in institutions if i.type == InstitutionType.INM]
    regional = [i for i in offices if state and i.state == state and i.parent_id is not None]
    national = [i for i in offices if i.parent_id is None]
    found = regional or national or offices
    return found[0].id if found else None


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
    foreign = [p for p in people if catalogue.is_recorded_foreign(p.nationality)]
    if foreign:
        inm = inm_office(session, referral.state)
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="inm_migration_status",
                institution_id=inm,
                humanitarian_visa_status="not_started",
                created_at=now,
            )
        )
        if any(catalogue.age_group(p.age) == "minors" for p in foreign):
            # The office's child protection officers attend a foreign minor (004:844).
            obligations.append(
                Obligation(
                    referral_id=referral.id,
                    kind="inm_child_protection",
                    institution_id=inm,
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
    if any(p.role in CEAV_ROLES for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="ceav_registration",
                institution_id=first_institution(session, *CEAV_TYPES, state=referral.state),
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
    if body.renavi_folio and obligation.kind != "ceav_registration":
        raise Unprocessable(
            "El folio del Registro Nacional de Víctimas (renavi_folio) solo aplica a la "
            "obligación de la CEAV o la comisión estatal.",
            code="not_applicable",
        )
    amends = bool(body.humanitarian_visa_status or body.renavi_folio)
    if obligation.status == "fulfilled" and not amends:
        raise Conflict("La obligación ya está atendida.", code="already_fulfilled")
    if body.humanitarian_visa_status:
        obligation.humanitarian_visa_status = body.humanitarian_visa_status
    if body.renavi_folio:
        obligation.renavi_folio = body.renavi_folio
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

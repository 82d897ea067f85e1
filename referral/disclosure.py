"""Disclosure: the facility's address to the sender, the people's names to the receiver —
each only after acceptance, each audited (who learnt what, never the secret)."""

from __future__ import annotations

from sqlmodel import Session

from referral import events, permissions, referrals
from referral.database import outbox
from referral.exceptions import InvalidTransition, NotPermitted
from referral.models import Agreement, ConsentIdentity, Institution, PersonIdentity, Referral
from referral.oficio import OficioData
from referral.records import get_referral, history_of, obligations_of, people_of
from referral.schemas import IdentityPublic
from referral.states import DISCLOSED_STATUSES
from services.contracts import emit
from services.tokens import Principal


def check_address_disclosure(
    session: Session, *, principal: Principal, referral_id: str
) -> Referral:
    """The sender may learn the facility's address once the referral is accepted."""
    referral = get_referral(session, referral_id=referral_id)
    if not permissions.is_sender(principal, referral.sending_institution_id):
        raise NotPermitted(
            "Solo la institución remitente conoce la dirección del lugar, tras la aceptación."
        )
    if referral.status not in DISCLOSED_STATUSES:
        raise InvalidTransition(
            "La dirección del lugar se revela solo cuando la receptora acepta la canalización."
        )
    return referral


def oficio_data(session: Session, *, principal: Principal, referral_id: str) -> OficioData:
    """What the oficio prints: for the two institutions of an accepted referral only."""
    referral = get_referral(session, referral_id=referral_id)
    if referrals.visibility(session, principal, referral) != referrals.FULL:
        raise NotPermitted(
            "El oficio de canalización lo emiten la institución remitente y la receptora."
        )
    if referral.status not in DISCLOSED_STATUSES:
        raise InvalidTransition(
            "El oficio de canalización se emite cuando la receptora acepta la canalización."
        )
    agreement = session.get(Agreement, referral.agreement_id) if referral.agreement_id else None
    sender = session.get(Institution, referral.sending_institution_id)
    receiver = session.get(Institution, referral.receiving_institution_id)
    return OficioData(
        referral=referral,
        people=people_of(session, referral.id),
        history=history_of(session, referral.id),
        obligations=obligations_of(session, referral.id),
        agreement=agreement,
        sender_name=sender.name if sender else "Sin información",
        receiver_name=receiver.name if receiver else "Sin información",
        facility_name="Sin información",
    )


def record_disclosure(
    session: Session, *, principal: Principal, referral: Referral, what: str
) -> None:
    """Audit a disclosure (``address`` or ``identity``): who learnt what, never the secret."""
    emit(
        outbox,
        session,
        events.disclosure(referral, principal=principal, what=what),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )


def record_address_disclosure(session: Session, *, principal: Principal, referral_id: str) -> None:
    """Check the address may still be disclosed, and audit that it is."""
    referral = check_address_disclosure(session, principal=principal, referral_id=referral_id)
    record_disclosure(session, principal=principal, referral=referral, what="address")


def disclose_identities(
    session: Session, *, principal: Principal, referral_id: str
) -> list[IdentityPublic]:
    """Names of the people (and of who gave the consent), only to the receiver after
    acceptance, never under witness protection; the disclosure is audited."""
    referral = get_referral(session, referral_id=referral_id)
    if not permissions.is_receiver(principal, referral.receiving_institution_id):
        raise NotPermitted("Las identidades solo se revelan a la institución receptora.")
    if referral.status not in DISCLOSED_STATUSES:
        raise InvalidTransition(
            "Las identidades se revelan solo después de aceptar la canalización."
        )
    if referral.witness_protection:
        raise NotPermitted(
            "Caso bajo protección de testigos: la identidad no se revela a la receptora."
        )
    out = []
    for person in people_of(session, referral.id):
        identity = session.get(PersonIdentity, person.id)
        out.append(
            IdentityPublic(
                position=person.position,
                pseudonym=person.pseudonym,
                name=identity.full_name if identity else None,
            )
        )
    giver = session.get(ConsentIdentity, referral.id)
    if giver is not None:
        out.append(
            IdentityPublic(
                kind="consent_given_by", position=None, pseudonym=None, name=giver.given_by
            )
        )
    record_disclosure(session, principal=principal, referral=referral, what="identity")
    return out

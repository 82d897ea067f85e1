"""Referrals: creation (idempotent), who sees what, the public view (the list:
``referral.listing``)."""

from __future__ import annotations

import hashlib
import json
import secrets

from sqlalchemy import or_
from sqlmodel import Session, col, select

from referral import events, permissions, placements, records
from referral.agreements import check_chosen_agreement
from referral.database import outbox
from referral.exceptions import IdempotencyMismatch, ReferralNotFound
from referral.institutions import get_institution
from referral.models import (
    ConsentIdentity,
    IdempotencyRecord,
    PersonIdentity,
    Referral,
    ReferralHistory,
    ReferralPerson,
)
from referral.obligations import derive_obligations
from referral.records import (
    get_referral,
    history_of,
    obligation_institutions,
    obligations_of,
    people_of,
)
from referral.schemas import ReferralCreate, ReferralPublic, consent_record
from referral.states import CLOSED_STATUSES, DISCLOSED_STATUSES
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal
from services.vocabulary import ReferralStatus, UserRole

FULL = "full"
DEIDENTIFIED = "deidentified"


# Fields added to the body over time: left at their default, a body hashes as it did
# before they existed (a retried request keeps matching its stored key).
_LATER_FIELDS = (
    "agreement_id",
    "detection_source",
    "without_agreement",
    "without_agreement_justification",
    "previous_referral_id",
)


def _request_hash(data: ReferralCreate) -> str:
    skip = {
        name
        for name in _LATER_FIELDS
        if getattr(data, name) == ReferralCreate.model_fields[name].default
    }
    return hashlib.sha256(
        json.dumps(data.model_dump(mode="json", exclude=skip), sort_keys=True).encode()
    ).hexdigest()


def ensure_hold_unused(session: Session, hold_id: str) -> None:
    """One hold, one live referral: cancelling one must not free another's beds."""
    other = session.exec(
        select(Referral.id).where(
            Referral.hold_id == hold_id, col(Referral.status).not_in(CLOSED_STATUSES)
        )
    ).first()
    if other is not None:
        raise Conflict(
            "Esa reserva de camas ya la usa otra canalización en curso.", code="hold_in_use"
        )


def new_person_key() -> str:
    """A pseudonymous person key: random, so nothing about the person can be read from it."""
    return secrets.token_hex(16)


def _person_keys(session: Session, data: ReferralCreate) -> list[str]:
    """Each person's key: the one sent back for a person referred again — known to the
    sending institution, as sender or receiver of an earlier referral — or a new one."""
    given = [p.person_key for p in data.people if p.person_key]
    if len(set(given)) != len(given):
        raise Unprocessable(
            "people.person_key: la misma persona aparece dos veces en la canalización.",
            code="person_key_repeated",
        )
    known: set[str] = set()
    if given:
        known = {
            key
            for key in session.exec(
                select(ReferralPerson.person_key)
                .join(Referral, col(Referral.id) == col(ReferralPerson.referral_id))
                .where(
                    col(ReferralPerson.person_key).in_(given),
                    or_(
                        col(Referral.sending_institution_id) == data.sending_institution_id,
                        col(Referral.receiving_institution_id) == data.sending_institution_id,
                    ),
                )
            ).all()
            if key
        }
    for i, p in enumerate(data.people):
        if p.person_key and p.person_key not in known:
            raise Unprocessable(
                f"people[{i}].person_key: no corresponde a ninguna persona canalizada por su "
                "institución; omítala para una persona canalizada por primera vez.",
                code="person_key_unknown",
            )
    return [p.person_key or new_person_key() for p in data.people]


def create_referral(
    session: Session,
    *,
    principal: Principal,
    data: ReferralCreate,
    idempotency_key: str | None = None,
) -> tuple[Referral, bool]:
    """A draft referral; ``(referral, created)`` — the same key answers the same referral."""
    onward = data.previous_referral_id is not None
    permissions.ensure_can_create_referral(principal, data.sending_institution_id, onward=onward)
    digest = _request_hash(data)
    if idempotency_key:
        record = session.get(IdempotencyRecord, (principal.sub, idempotency_key))
        if record is not None:
            if record.request_hash != digest:
                raise IdempotencyMismatch(
                    "Esa Idempotency-Key ya se usó con otro contenido.",
                )
            return get_referral(session, referral_id=record.referral_id), False
    if data.sending_institution_id == data.receiving_institution_id:
        raise Unprocessable(
            "La institución remitente y la receptora deben ser distintas.",
            code="same_institution",
        )
    get_institution(session, institution_id=data.sending_institution_id)
    receiver = get_institution(session, institution_id=data.receiving_institution_id)
    if data.hold_id:
        ensure_hold_unused(session, data.hold_id)
    placements.check_without_agreement(principal, data)
    previous = placements.previous_for_transfer(session, principal=principal, data=data)
    now = utcnow()
    if data.agreement_id is not None:
        check_chosen_agreement(
            session,
            agreement_id=data.agreement_id,
            sender=data.sending_institution_id,
            receiver=data.receiving_institution_id,
            today=now.date(),
        )
    referral = Referral(
        sending_institution_id=data.sending_institution_id,
        receiving_institution_id=data.receiving_institution_id,
        facility_id=data.facility_id,
        hold_id=data.hold_id,
        agreement_id=data.agreement_id,
        operation_id=data.operation_id,
        state=data.state or receiver.state,
        urgency=data.urgency,
        case_reference=data.case_reference,
        services=list(dict.fromkeys(data.services)),
        witness_protection=data.witness_protection,
        consent=consent_record(data.consent),
        # The same victims: how they were detected does not change with the place.
        detection_source=data.detection_source or (previous.detection_source if previous else None),
        without_agreement=data.without_agreement,
        without_agreement_justification=(
            data.without_agreement_justification if data.without_agreement else None
        ),
        previous_referral_id=previous.id if previous else None,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    if data.consent.given_by:
        session.add(ConsentIdentity(referral_id=referral.id, given_by=data.consent.given_by))
    keys = _person_keys(session, data)
    people: list[ReferralPerson] = (
        placements.carry_people(session, previous=previous, referral=referral) if previous else []
    )
    for position, person in enumerate(data.people):
        row = ReferralPerson(
            referral_id=referral.id,
            position=position,
            sex=person.sex,
            age=person.age,
            role=person.role,
            nationality=person.nationality,
            pseudonym=person.pseudonym,
            state_of_origin=person.state_of_origin,
            languages=person.languages,
            vulnerable_groups=None
            if person.vulnerable_groups is None
            else list(dict.fromkeys(person.vulnerable_groups)),
            offences=list(dict.fromkeys(person.offences)),
            person_key=keys[position],
        )
        session.add(row)
        people.append(row)
        if person.name:
            session.flush()
            session.add(PersonIdentity(person_id=row.id, full_name=person.name))
    for obligation in derive_obligations(session, referral, people):
        session.add(obligation)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action="create",
            from_status=None,
            to_status=ReferralStatus.DRAFT,
            version=1,
            actor=principal.sub,
            institution_id=principal.institution_id,
            at=now,
        )
    )
    if idempotency_key:
        session.add(
            IdempotencyRecord(
                actor=principal.sub,
                key=idempotency_key,
                request_hash=digest,
                referral_id=referral.id,
                created_at=now,
            )
        )
    emit(
        outbox,
        session,
        events.referral_changed(
            referral, people, "created", records.step_times(session, referral.id)
        ),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )
    session.flush()
    return referral, True


def visibility(session: Session, principal: Principal, referral: Referral) -> str:
    """``full`` (no names), ``deidentified``, or raise when the caller may not see it."""
    inst = principal.institution_id
    observer = principal.has(UserRole.OBSERVER)
    if principal.has(UserRole.SERVICE):
        return FULL
    if inst and inst == referral.sending_institution_id and not observer:
        return FULL
    if inst and inst == referral.receiving_institution_id and not observer:
        return FULL if referral.status in DISCLOSED_STATUSES else DEIDENTIFIED
    if permissions.sees_all_deidentified(principal):
        return DEIDENTIFIED
    if inst and inst in obligation_institutions(session, referral.id):
        return DEIDENTIFIED
    if observer:
        permissions.ensure_can_list_referrals(principal)
    raise ReferralNotFound(f"No existe la canalización {referral.id}.")


def referral_public(session: Session, referral: Referral, *, level: str) -> ReferralPublic:
    return ReferralPublic.of(
        referral,
        people=people_of(session, referral.id),
        obligations=obligations_of(session, referral.id),
        history=history_of(session, referral.id),
        deidentified=level != FULL,
    )


def visible_referral(session: Session, *, principal: Principal, referral_id: str) -> Referral:
    """The referral, when the caller may see it (else as if it did not exist)."""
    referral = get_referral(session, referral_id=referral_id)
    visibility(session, principal, referral)
    return referral


def referral_view(session: Session, *, principal: Principal, referral_id: str) -> ReferralPublic:
    """The referral as the caller may see it."""
    referral = get_referral(session, referral_id=referral_id)
    return referral_public(session, referral, level=visibility(session, principal, referral))

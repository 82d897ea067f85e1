"""The rules of the referral service: plain functions, keyword-only, no HTTP.

Remote calls to the capacity service are made by the router around these functions, never
inside a database transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, update
from sqlmodel import Session, col, select

from referral import catalogue, cms, permissions
from referral.database import outbox
from referral.exceptions import (
    ActionInProgress,
    AgreementNotFound,
    IdempotencyMismatch,
    InstitutionNotFound,
    InvalidTransition,
    ReferralNotFound,
    StaleVersion,
)
from referral.models import (
    Agreement,
    AgreementParty,
    Escalation,
    IdempotencyRecord,
    Institution,
    InstitutionName,
    Obligation,
    PersonIdentity,
    Referral,
    ReferralHistory,
    ReferralPerson,
    RefusedAttempt,
)
from referral.schemas import (
    ActionBody,
    AgreementCreate,
    AgreementPublic,
    FulfilBody,
    HistoryPublic,
    IdentityPublic,
    InstitutionCreate,
    InstitutionPublic,
    InstitutionUpdate,
    NameRecord,
    ObligationPublic,
    OutcomeLine,
    PartyPublic,
    PersonPublic,
    ReferralCreate,
    ReferralPublic,
)
from services.clock import as_utc, utcnow
from services.errors import BadRequest, Conflict, Unprocessable
from services.ids import new_id
from services.tokens import Principal
from services.vocabulary import INSTITUTION_TYPES, cndh_age_band

# How long the receiver has to answer a sent referral.
RESPONSE_DEADLINES = {"urgent": timedelta(hours=2), "normal": timedelta(hours=24)}
# An accepted referral not admitted within this time has no known outcome.
ADMISSION_DEADLINE = timedelta(hours=72)

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "send": (frozenset({"draft"}), "sent"),
    "accept": (frozenset({"sent"}), "accepted"),
    "decline": (frozenset({"sent"}), "declined"),
    "in_transit": (frozenset({"accepted"}), "in_transit"),
    "admit": (frozenset({"accepted", "in_transit"}), "admitted"),
    "discharge": (frozenset({"admitted"}), "discharged"),
    "cancel": (frozenset({"draft", "sent", "accepted", "in_transit"}), "cancelled"),
}
ACTIONS = tuple(TRANSITIONS)
DISCLOSED_STATUSES = frozenset({"accepted", "in_transit", "admitted", "discharged"})
CLOSED_STATUSES = frozenset({"discharged", "declined", "cancelled", "expired"})
RELEASING_ACTIONS = frozenset({"decline", "cancel"})
# Actions whose capacity step (consume the hold, discharge the beds) runs outside the
# referral's transaction: they claim the referral first, so that two racing actions never
# both reach capacity, and complete (or let go of) the claim afterwards.
CLAIMED_ACTIONS = frozenset({"admit", "discharge"})
# A claim older than this was interrupted (a crash between the two steps); the recovery
# sweep completes it, since the capacity steps are idempotent.
CLAIM_LEASE = timedelta(seconds=60)


def _event(
    session: Session,
    *,
    type: str,
    aggregate_type: str,
    aggregate_id: str,
    version: int = 0,
    principal: Principal | None,
    payload: dict[str, Any],
) -> None:
    outbox.emit(
        session,
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        version=version,
        principal=principal,
        payload=payload,
    )


# --- institutions ---------------------------------------------------------------------------


def institution_public(session: Session, inst: Institution) -> InstitutionPublic:
    names = session.exec(
        select(InstitutionName)
        .where(InstitutionName.institution_id == inst.id)
        .order_by(col(InstitutionName.valid_from))
    ).all()
    return InstitutionPublic(
        id=inst.id,
        name=inst.name,
        type=inst.type,
        type_label=INSTITUTION_TYPES[inst.type],
        state=inst.state,
        legal_form=inst.legal_form,
        parent_id=inst.parent_id,
        version=inst.version,
        names=[
            NameRecord(
                name=n.name,
                valid_from=as_utc(n.valid_from),
                valid_to=as_utc(n.valid_to) if n.valid_to else None,
            )
            for n in names
        ],
    )


def get_institution(session: Session, *, institution_id: str) -> Institution:
    inst = session.get(Institution, institution_id)
    if inst is None:
        raise InstitutionNotFound(f"No existe la institución {institution_id}.")
    return inst


def create_institution(
    session: Session, *, principal: Principal, data: InstitutionCreate
) -> Institution:
    """Register an institution (platform admin only); its first name opens its history."""
    permissions.can_create_institution(principal)
    if data.legal_form and data.type != "ngo":
        raise Unprocessable(
            "Solo las organizaciones civiles tienen figura jurídica (A.C. o I.A.P.).",
            code="legal_form_not_applicable",
        )
    if data.id and session.get(Institution, data.id) is not None:
        raise Conflict(f"Ya existe la institución {data.id}.", code="institution_exists")
    if data.parent_id:
        get_institution(session, institution_id=data.parent_id)
    now = utcnow()
    inst = Institution(
        name=data.name,
        type=data.type,
        state=data.state,
        legal_form=data.legal_form,
        parent_id=data.parent_id,
        created_at=now,
    )
    if data.id:
        inst.id = data.id
    session.add(inst)
    session.flush()
    session.add(InstitutionName(institution_id=inst.id, name=data.name, valid_from=now))
    _institution_created(session, inst, principal)
    session.flush()
    return inst


def _institution_created(session: Session, inst: Institution, principal: Principal | None) -> None:
    _event(
        session,
        type="referral.institution.created",
        aggregate_type="institution",
        aggregate_id=inst.id,
        version=1,
        principal=principal,
        # The trail strips "name" keys (people's names); an institution's name is not one.
        payload={
            "id": inst.id,
            "name": inst.name,
            "institution_name": inst.name,
            "type": inst.type,
            "state": inst.state,
        },
    )


def update_institution(
    session: Session, *, principal: Principal, institution_id: str, data: InstitutionUpdate
) -> Institution:
    """Rename (closing the old name's validity) or amend an institution."""
    permissions.can_create_institution(principal)
    inst = get_institution(session, institution_id=institution_id)
    now = utcnow()
    if data.name and data.name != inst.name:
        current = session.exec(
            select(InstitutionName).where(
                InstitutionName.institution_id == inst.id, col(InstitutionName.valid_to).is_(None)
            )
        ).all()
        for row in current:
            row.valid_to = now
            session.add(row)
        session.add(InstitutionName(institution_id=inst.id, name=data.name, valid_from=now))
        inst.name = data.name
    if data.legal_form is not None:
        inst.legal_form = data.legal_form
    if data.parent_id is not None:
        get_institution(session, institution_id=data.parent_id)
        inst.parent_id = data.parent_id
    inst.version += 1
    session.add(inst)
    _event(
        session,
        type="referral.institution.updated",
        aggregate_type="institution",
        aggregate_id=inst.id,
        version=inst.version,
        principal=principal,
        payload={"id": inst.id, "name": inst.name, "institution_name": inst.name},
    )
    session.flush()
    return inst


def list_institutions(session: Session, *, type: str | None = None) -> list[Institution]:
    query = select(Institution).order_by(col(Institution.name))
    if type:
        query = query.where(Institution.type == type)
    return list(session.exec(query).all())


# --- agreements -----------------------------------------------------------------------------


def effective_status(agreement: Agreement, today: date) -> str:
    """The stored status, with a signed agreement past its end date shown as expired."""
    if agreement.status == "signed" and agreement.valid_to < today:
        return "expired"
    return agreement.status


def _parties(session: Session, agreement_id: str) -> list[AgreementParty]:
    return list(
        session.exec(
            select(AgreementParty)
            .where(AgreementParty.agreement_id == agreement_id)
            .order_by(col(AgreementParty.institution_id))
        ).all()
    )


def agreement_public(session: Session, agreement: Agreement) -> AgreementPublic:
    parties = _parties(session, agreement.id)
    status = effective_status(agreement, utcnow().date())
    return AgreementPublic(
        id=agreement.id,
        number=agreement.number,
        title=agreement.title,
        party_ids=[p.institution_id for p in parties],
        parties=[
            PartyPublic(
                institution_id=p.institution_id,
                signed=p.signed_at is not None,
                signed_by=p.signed_by,
                signed_at=as_utc(p.signed_at) if p.signed_at else None,
            )
            for p in parties
        ],
        valid_from=agreement.valid_from,
        valid_to=agreement.valid_to,
        populations={"sexes": agreement.scope_sexes, "age_groups": agreement.scope_age_groups},
        services=agreement.scope_services,
        states=agreement.scope_states,
        status=status,
        status_label=catalogue.AGREEMENT_STATUSES[status],
        version=agreement.version,
        signed_at=as_utc(agreement.signed_at) if agreement.signed_at else None,
        document_sha256=agreement.document_sha256,
        signature_verified=agreement.signature_verified,
        signature_detail=agreement.signature_detail,
    )


def get_agreement(session: Session, *, agreement_id: str) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise AgreementNotFound(f"No existe el convenio {agreement_id}.")
    return agreement


def create_agreement(session: Session, *, principal: Principal, data: AgreementCreate) -> Agreement:
    """Register a convenio in draft, with its parties and scope."""
    permissions.can_create_agreement(principal, data.party_ids)
    for party in data.party_ids:
        get_institution(session, institution_id=party)
    if session.exec(select(Agreement).where(Agreement.number == data.number)).first():
        raise Conflict(f"Ya existe un convenio con número {data.number}.", code="agreement_exists")
    agreement = Agreement(
        number=data.number,
        title=data.title,
        valid_from=data.valid_from,
        valid_to=data.valid_to,
        scope_sexes=list(dict.fromkeys(data.populations.sexes)),
        scope_age_groups=list(dict.fromkeys(data.populations.age_groups)),
        scope_services=list(dict.fromkeys(data.services)),
        scope_states=list(dict.fromkeys(data.states)),
        created_by=principal.sub,
        created_at=utcnow(),
    )
    session.add(agreement)
    session.flush()
    for party in data.party_ids:
        session.add(AgreementParty(agreement_id=agreement.id, institution_id=party))
    _event(
        session,
        type="referral.agreement.created",
        aggregate_type="agreement",
        aggregate_id=agreement.id,
        version=1,
        principal=principal,
        payload={"id": agreement.id, "number": agreement.number, "party_ids": data.party_ids},
    )
    session.flush()
    return agreement


def list_agreements(session: Session) -> list[Agreement]:
    return list(session.exec(select(Agreement).order_by(col(Agreement.number))).all())


def _bump(session: Session, agreement: Agreement, **values: Any) -> None:
    """Compare-and-set on the agreement's version."""
    result = session.execute(
        update(Agreement)
        .where(col(Agreement.id) == agreement.id, col(Agreement.version) == agreement.version)
        .values(version=agreement.version + 1, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("El convenio cambió mientras se actualizaba; intente de nuevo.")
    session.refresh(agreement)


def mark_ready(session: Session, *, principal: Principal, agreement_id: str) -> Agreement:
    """draft → ready_for_signature."""
    agreement = get_agreement(session, agreement_id=agreement_id)
    permissions.can_manage_agreement(
        principal, [p.institution_id for p in _parties(session, agreement.id)]
    )
    if agreement.status != "draft":
        raise InvalidTransition(
            f"El convenio está «{catalogue.AGREEMENT_STATUSES[agreement.status]}»; solo un "
            "borrador pasa a firma."
        )
    _bump(session, agreement, status="ready_for_signature")
    return agreement


def sign_agreement(
    session: Session, *, principal: Principal, agreement_id: str, institution_id: str
) -> Agreement:
    """Record one party's signature; the agreement is signed once every party has signed."""
    agreement = get_agreement(session, agreement_id=agreement_id)
    permissions.can_sign_agreement(principal, institution_id)
    if agreement.status not in ("draft", "ready_for_signature"):
        raise InvalidTransition(
            f"El convenio está «{catalogue.AGREEMENT_STATUSES[agreement.status]}» y ya no "
            "admite firmas."
        )
    party = session.get(AgreementParty, (agreement.id, institution_id))
    if party is None:
        raise Unprocessable("La institución indicada no es parte del convenio.", code="not_a_party")
    if party.signed_at is not None:
        raise Conflict("Esa institución ya firmó el convenio.", code="already_signed")
    now = utcnow()
    party.signed_at = now
    party.signed_by = principal.sub
    session.add(party)
    session.flush()
    all_signed = all(p.signed_at is not None for p in _parties(session, agreement.id))
    values: dict[str, Any] = {"status": "signed" if all_signed else "ready_for_signature"}
    if all_signed:
        values["signed_at"] = now
    _bump(session, agreement, **values)
    _event(
        session,
        type="referral.agreement.signed" if all_signed else "referral.agreement.party_signed",
        aggregate_type="agreement",
        aggregate_id=agreement.id,
        version=agreement.version,
        principal=principal,
        payload={"id": agreement.id, "institution_id": institution_id, "status": agreement.status},
    )
    return agreement


def revoke_agreement(
    session: Session, *, principal: Principal, agreement_id: str, reason: str | None
) -> Agreement:
    agreement = get_agreement(session, agreement_id=agreement_id)
    permissions.can_manage_agreement(
        principal, [p.institution_id for p in _parties(session, agreement.id)]
    )
    if agreement.status == "revoked":
        raise InvalidTransition("El convenio ya está revocado.")
    _bump(session, agreement, status="revoked", revoked_at=utcnow(), revoke_reason=reason)
    _event(
        session,
        type="referral.agreement.revoked",
        aggregate_type="agreement",
        aggregate_id=agreement.id,
        version=agreement.version,
        principal=principal,
        payload={"id": agreement.id, "status": "revoked"},
    )
    return agreement


def store_document(
    session: Session,
    *,
    principal: Principal,
    agreement_id: str,
    pdf: bytes,
    signature: bytes | None = None,
) -> Agreement:
    """Keep the signed PDF with its SHA-256; verify a detached CMS signature if given."""
    agreement = get_agreement(session, agreement_id=agreement_id)
    permissions.can_manage_agreement(
        principal, [p.institution_id for p in _parties(session, agreement.id)]
    )
    if not pdf.startswith(b"%PDF-"):
        raise Unprocessable("El documento no es un PDF.", code="not_a_pdf")
    verified: bool | None = None
    detail: str | None = None
    if signature is not None:
        verified, detail = verify_detached_signature(pdf, signature)
    _bump(
        session,
        agreement,
        document=pdf,
        document_sha256=hashlib.sha256(pdf).hexdigest(),
        document_uploaded_at=utcnow(),
        signature_verified=verified,
        signature_detail=detail,
    )
    return agreement


def verify_detached_signature(content: bytes, signature: bytes) -> tuple[bool, str]:
    """Check a detached CMS/PKCS#7 signature (DER or PEM) over ``content``."""
    if signature.lstrip().startswith(b"-----BEGIN"):
        lines = [
            line
            for line in signature.strip().splitlines()
            if line and not line.startswith(b"-----")
        ]
        try:
            signature = base64.b64decode(b"".join(lines), validate=True)
        except (binascii.Error, ValueError):
            return False, "La firma PEM no es base64 válido."
    return cms.verify_detached(content, signature)


# --- referrals: creation and views ----------------------------------------------------------


def _request_hash(data: ReferralCreate) -> str:
    # Without a chosen agreement the hash is the one bodies had before the field existed.
    skip = {"agreement_id"} if data.agreement_id is None else None
    return hashlib.sha256(
        json.dumps(data.model_dump(mode="json", exclude=skip), sort_keys=True).encode()
    ).hexdigest()


def _check_chosen_agreement(
    session: Session, *, agreement_id: str, sender: str, receiver: str, today: date
) -> None:
    """The agreement a sender names must be signed, in force and bind both institutions."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        problem = f"No existe el convenio {agreement_id}."
    elif not {sender, receiver} <= {p.institution_id for p in _parties(session, agreement.id)}:
        problem = (
            f"El convenio {agreement.number} no obliga a la institución remitente y a la receptora."
        )
    elif agreement.status != "signed":
        problem = f"El convenio {agreement.number} no está firmado por todas las partes."
    elif not agreement.valid_from <= today <= agreement.valid_to:
        problem = f"El convenio {agreement.number} no está vigente hoy."
    else:
        return
    raise Unprocessable(problem, code="agreement_not_applicable")


def get_referral(session: Session, *, referral_id: str) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise ReferralNotFound(f"No existe la canalización {referral_id}.")
    return referral


def _people(session: Session, referral_id: str) -> list[ReferralPerson]:
    return list(
        session.exec(
            select(ReferralPerson)
            .where(ReferralPerson.referral_id == referral_id)
            .order_by(col(ReferralPerson.position))
        ).all()
    )


def _first_institution(session: Session, *types: str, state: str | None = None) -> str | None:
    for type_ in types:
        query = select(Institution).where(Institution.type == type_)
        if state and type_ in ("dif_estatal", "ceeav"):
            query = query.where(Institution.state == state)
        elif type_ in ("dif_estatal", "ceeav"):
            continue
        found = session.exec(query.order_by(col(Institution.created_at))).first()
        if found:
            return found.id
    return None


def _derive_obligations(
    session: Session, referral: Referral, people: list[ReferralPerson]
) -> list[Obligation]:
    """The institutions the law brings in for these people."""
    now = utcnow()
    obligations: list[Obligation] = []
    if any(catalogue.age_group(p.age) == "minors" for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="dif_child_protection",
                institution_id=_first_institution(
                    session, "dif_estatal", "dif_nacional", state=referral.state
                ),
                created_at=now,
            )
        )
    if any(p.nationality != "MEX" for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="inm_migration_status",
                institution_id=_first_institution(session, "inm"),
                humanitarian_visa_status="not_started",
                created_at=now,
            )
        )
    if any(p.role == "victim" for p in people):
        obligations.append(
            Obligation(
                referral_id=referral.id,
                kind="ceav_registration",
                institution_id=_first_institution(session, "ceav"),
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


def create_referral(
    session: Session,
    *,
    principal: Principal,
    data: ReferralCreate,
    idempotency_key: str | None = None,
) -> tuple[Referral, bool]:
    """A draft referral; ``(referral, created)`` — the same key answers the same referral."""
    permissions.can_create_referral(principal, data.sending_institution_id)
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
        _ensure_hold_unused(session, data.hold_id)
    now = utcnow()
    if data.agreement_id is not None:
        _check_chosen_agreement(
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
        state=data.state or receiver.state,
        urgency=data.urgency,
        case_reference=data.case_reference,
        services=list(dict.fromkeys(data.services)),
        witness_protection=data.witness_protection,
        consent=data.consent.model_dump(mode="json"),
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
    )
    session.add(referral)
    session.flush()
    people: list[ReferralPerson] = []
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
            vulnerable_groups=list(dict.fromkeys(person.vulnerable_groups)),
            offences=list(dict.fromkeys(person.offences)),
        )
        session.add(row)
        people.append(row)
        if person.name:
            session.flush()
            session.add(PersonIdentity(person_id=row.id, full_name=person.name))
    for obligation in _derive_obligations(session, referral, people):
        session.add(obligation)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action="create",
            from_status=None,
            to_status="draft",
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
    _emit_referral(session, referral, people, "created", principal)
    session.flush()
    return referral, True


def _ensure_hold_unused(session: Session, hold_id: str) -> None:
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


def _people_payload(people: list[ReferralPerson]) -> list[dict[str, Any]]:
    return [
        {
            "sex": p.sex,
            "age_group": catalogue.age_group(p.age),
            "age_band": cndh_age_band(p.age),
            "nationality": p.nationality,
            "role": p.role,
            "state_of_origin": p.state_of_origin,
            "vulnerable_groups": list(p.vulnerable_groups or []),
            "offences": list(p.offences or []),
        }
        for p in people
    ]


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value is not None else None


def _emit_referral(
    session: Session,
    referral: Referral,
    people: list[ReferralPerson],
    what: str,
    principal: Principal | None,
    **extra: Any,
) -> None:
    _event(
        session,
        type=f"referral.referral.{what}",
        aggregate_type="referral",
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
        payload={
            "referral_id": referral.id,
            "status": referral.status,
            "sending_institution_id": referral.sending_institution_id,
            "receiving_institution_id": referral.receiving_institution_id,
            "facility_id": referral.facility_id,
            "urgency": referral.urgency,
            "state": referral.state,
            "services": list(referral.services or []),
            "sent_at": _iso(referral.sent_at),
            # The answer deadline: statistics count "no information" outcomes against it.
            "response_due_at": _iso(referral.response_due_at),
            "people": _people_payload(people),
            **extra,
        },
    )


def _obligation_institutions(session: Session, referral_id: str) -> set[str]:
    return {
        o.institution_id
        for o in session.exec(select(Obligation).where(Obligation.referral_id == referral_id))
        if o.institution_id
    }


def visibility(session: Session, principal: Principal, referral: Referral) -> str:
    """``full`` (no names), ``deidentified``, or raise when the caller may not see it."""
    inst = principal.institution_id
    if principal.has("service"):
        return "full"
    if inst and inst == referral.sending_institution_id and not principal.has("observer"):
        return "full"
    if inst and inst == referral.receiving_institution_id and not principal.has("observer"):
        return "full" if referral.status in DISCLOSED_STATUSES else "deidentified"
    if permissions.sees_all_deidentified(principal):
        return "deidentified"
    if inst and inst in _obligation_institutions(session, referral.id):
        return "deidentified"
    if principal.has("observer"):
        permissions.can_list_referrals(principal)
    raise ReferralNotFound(f"No existe la canalización {referral.id}.")


def referral_public(session: Session, referral: Referral, *, level: str) -> ReferralPublic:
    deid = level != "full"
    people = _people(session, referral.id)
    obligations = session.exec(
        select(Obligation)
        .where(Obligation.referral_id == referral.id)
        .order_by(col(Obligation.kind))
    ).all()
    history = session.exec(
        select(ReferralHistory)
        .where(ReferralHistory.referral_id == referral.id)
        .order_by(col(ReferralHistory.id))
    ).all()
    return ReferralPublic(
        id=referral.id,
        sending_institution_id=referral.sending_institution_id,
        receiving_institution_id=referral.receiving_institution_id,
        facility_id=referral.facility_id,
        hold_id=referral.hold_id,
        agreement_id=referral.agreement_id,
        state=referral.state,
        urgency=referral.urgency,
        status=referral.status,
        status_label=catalogue.REFERRAL_STATUSES[referral.status],
        version=referral.version,
        deidentified=deid,
        case_reference=None if deid else referral.case_reference,
        services=referral.services,
        witness_protection=referral.witness_protection,
        consent=None if deid else referral.consent,
        people=[
            PersonPublic(
                sex=p.sex,
                age=None if deid else p.age,
                age_group=catalogue.age_group(p.age),
                role=p.role,
                nationality=p.nationality,
                pseudonym=None if deid else p.pseudonym,
                state_of_origin=None if deid else p.state_of_origin,
                languages=p.languages,
                vulnerable_groups=p.vulnerable_groups,
                offences=p.offences,
            )
            for p in people
        ],
        obligations=[
            ObligationPublic(
                id=o.id,
                kind=o.kind,
                label=catalogue.OBLIGATIONS[o.kind],
                institution_id=o.institution_id,
                status=o.status,
                humanitarian_visa_status=o.humanitarian_visa_status,
                note=o.note,
                fulfilled_at=as_utc(o.fulfilled_at) if o.fulfilled_at else None,
            )
            for o in obligations
        ],
        outcome=referral.outcome,
        decline_reason=referral.decline_reason,
        sent_at=as_utc(referral.sent_at) if referral.sent_at else None,
        response_due_at=as_utc(referral.response_due_at) if referral.response_due_at else None,
        created_at=as_utc(referral.created_at),
        history=[
            HistoryPublic(
                action=h.action,
                from_status=h.from_status,
                to_status=h.to_status,
                version=h.version,
                actor=h.actor,
                institution_id=h.institution_id,
                reason=h.reason,
                at=as_utc(h.at),
            )
            for h in history
        ],
    )


def list_referrals(
    session: Session, *, principal: Principal, status: str | None = None, limit: int = 200
) -> list[tuple[Referral, str]]:
    """Referrals the caller may see, newest first, each with its visibility level."""
    permissions.can_list_referrals(principal)
    query = select(Referral).order_by(col(Referral.created_at).desc()).limit(limit)
    if status:
        query = query.where(Referral.status == status)
    if not (principal.has("service") or permissions.sees_all_deidentified(principal)):
        inst = principal.institution_id or ""
        obliged = select(Obligation.referral_id).where(Obligation.institution_id == inst)
        query = query.where(
            or_(
                col(Referral.sending_institution_id) == inst,
                col(Referral.receiving_institution_id) == inst,
                col(Referral.id).in_(obliged),
            )
        )
    return [(r, visibility(session, principal, r)) for r in session.exec(query).all()]


# --- gating -------------------------------------------------------------------------------


def find_binding_agreement(
    session: Session, *, referral: Referral, people: list[ReferralPerson], today: date
) -> tuple[Agreement | None, str, str]:
    """The agreement that lets this referral travel, or (None, missing code, sentence).

    A referral whose sender chose an agreement travels along that one only; otherwise the
    first applicable agreement by number is taken (a stable choice).
    """
    sender, receiver = referral.sending_institution_id, referral.receiving_institution_id
    both = (
        select(AgreementParty.agreement_id)
        .where(col(AgreementParty.institution_id).in_([sender, receiver]))
        .group_by(col(AgreementParty.agreement_id))
        .having(func.count() == 2)
    )
    query = select(Agreement).where(col(Agreement.id).in_(both))
    if referral.agreement_id is not None:
        query = query.where(col(Agreement.id) == referral.agreement_id)
    candidates = list(session.exec(query.order_by(col(Agreement.number))).all())
    if not candidates:
        return (
            None,
            "agreement",
            "No existe un convenio entre la institución remitente y la receptora.",
        )
    signed = [a for a in candidates if a.status == "signed"]
    if not signed:
        return (
            None,
            "signature",
            "El convenio entre la institución remitente y la receptora no está firmado por todas "
            "las partes.",
        )
    in_force = [a for a in signed if a.valid_from <= today <= a.valid_to]
    if not in_force:
        return (
            None,
            "validity",
            "El convenio firmado entre las instituciones no está vigente hoy.",
        )
    sexes = {p.sex for p in people}
    groups = {catalogue.age_group(p.age) for p in people}
    last = ("scope", "")
    for agreement in in_force:
        if not sexes <= set(agreement.scope_sexes):
            missing = ", ".join(sorted(sexes - set(agreement.scope_sexes)))
            last = ("population", f"El convenio vigente no cubre a personas de sexo {missing}.")
            continue
        if not groups <= set(agreement.scope_age_groups):
            missing = ", ".join(
                catalogue.AGE_GROUPS[g].lower()
                for g in sorted(groups - set(agreement.scope_age_groups))
            )
            last = ("population", f"El convenio vigente no cubre a {missing}.")
            continue
        if agreement.scope_states and referral.state not in agreement.scope_states:
            last = (
                "territory",
                f"El convenio vigente no cubre la entidad federativa {referral.state}.",
            )
            continue
        wanted = set(referral.services)
        if agreement.scope_services and not wanted <= set(agreement.scope_services):
            missing = ", ".join(
                catalogue.SERVICES[s].lower()
                for s in sorted(wanted - set(agreement.scope_services))
            )
            last = ("services", f"El convenio vigente no cubre los servicios: {missing}.")
            continue
        return agreement, "", ""
    return None, last[0], last[1]


# --- lifecycle ----------------------------------------------------------------------------


@dataclass
class ActionPlan:
    """What the router must do remotely around an action's transaction."""

    referral_id: str
    action: str
    receiving_institution_id: str
    hold_id: str | None
    facility_id: str
    allocations: list[dict[str, Any]] = field(default_factory=list)
    sending_institution_id: str = ""
    claim_token: str | None = None  # set when the action claimed the referral


def check_placement(
    *,
    plan: ActionPlan,
    facility_operator_id: str | None,
    facility_status: str | None,
    hold_status: str | None,
    hold_facility_id: str | None,
    facility_registration: str | None = "registered",
    registered_only: bool = False,
) -> None:
    """Before sending: the facility is active and run by the receiver; the hold is live;
    and, when unregistered facilities may not receive referrals, it is on SEGOB's roster."""
    if facility_operator_id and facility_operator_id != plan.receiving_institution_id:
        raise Unprocessable(
            "El lugar indicado no lo opera la institución receptora.",
            code="facility_not_operated_by_receiver",
        )
    if facility_status and facility_status != "active":
        raise Conflict(
            f"El lugar indicado no está activo ({facility_status}); no recibe canalizaciones.",
            code="facility_not_active",
        )
    if registered_only and facility_registration != "registered":
        raise Conflict(
            "El lugar indicado no está registrado en el padrón de SEGOB; no recibe "
            "canalizaciones mientras no lo esté.",
            code="facility_not_registered",
        )
    if hold_status is not None and hold_status != "active":
        raise Conflict(
            f"La reserva de camas ya no está activa ({hold_status}); reserve de nuevo.",
            code="hold_not_active",
        )
    if hold_facility_id and hold_facility_id != plan.facility_id:
        raise Unprocessable("La reserva de camas es de otro lugar.", code="hold_for_other_facility")


@dataclass
class ActionResult:
    referral: Referral
    refused: str | None = None  # a sentence: the send was refused for want of an agreement
    release_hold: str | None = None


def _check_action(
    session: Session,
    *,
    principal: Principal,
    referral: Referral,
    action: str,
    body: ActionBody,
    if_match: int | None,
    claim_token: str | None = None,
) -> None:
    if action not in TRANSITIONS:
        raise BadRequest(f"Acción desconocida: {action}.", code="unknown_action")
    if referral.pending_token is not None and referral.pending_token != claim_token:
        raise ActionInProgress(
            "Otra acción sobre esta canalización está en curso; vuelva a consultarla en unos "
            "segundos."
        )
    if not principal.has("service"):
        permissions.can_act(
            principal,
            action,
            sending_institution_id=referral.sending_institution_id,
            receiving_institution_id=referral.receiving_institution_id,
        )
    if if_match is not None and if_match != referral.version:
        raise StaleVersion(
            f"La canalización va en la versión {referral.version}, no en la {if_match}; "
            "vuelva a consultarla.",
        )
    allowed, _ = TRANSITIONS[action]
    if referral.status not in allowed:
        label = catalogue.REFERRAL_STATUSES[referral.status].lower()
        raise InvalidTransition(
            f"No se puede «{action}» una canalización en estado «{label}».",
        )
    if (
        action in ("accept", "decline")
        and referral.response_due_at is not None
        and as_utc(referral.response_due_at) < utcnow()
    ):
        raise InvalidTransition(
            "El plazo para responder esta canalización ya venció; la remitente buscará otro lugar.",
            code="response_deadline_passed",
        )
    if action == "decline" and not (body.reason and body.reason.strip()):
        raise Unprocessable(
            "Para rechazar una canalización hay que indicar el motivo.", code="reason_required"
        )
    if action == "discharge" and body.outcome is None:
        raise Unprocessable("El egreso requiere el desenlace (outcome).", code="outcome_required")


def plan_action(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    action: str,
    body: ActionBody,
    if_match: int | None,
) -> ActionPlan:
    """Check an action before any remote call; an action in ``CLAIMED_ACTIONS`` also claims
    the referral (a write: call it in a write unit of work), so that no other action can
    change it until :func:`apply_action` completes the claim or :func:`let_go` drops it."""
    referral = get_referral(session, referral_id=referral_id)
    _check_action(
        session, principal=principal, referral=referral, action=action, body=body, if_match=if_match
    )
    token: str | None = None
    if action in CLAIMED_ACTIONS:
        token = new_id()
        claimed = session.execute(
            update(Referral)
            .where(
                col(Referral.id) == referral.id,
                col(Referral.version) == referral.version,
                col(Referral.status) == referral.status,
                col(Referral.pending_token).is_(None),
            )
            .values(
                pending_action=action,
                pending_token=token,
                pending_since=utcnow(),
                # kept with the claim, so that the sweep can finish an interrupted discharge
                **({"outcome": body.outcome} if action == "discharge" else {}),
            )
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise ActionInProgress(
                "Otra persona está cambiando la canalización al mismo tiempo; vuelva a consultarla."
            )
    return ActionPlan(
        referral_id=referral.id,
        action=action,
        receiving_institution_id=referral.receiving_institution_id,
        hold_id=referral.hold_id,
        facility_id=referral.facility_id,
        allocations=list(referral.allocations or []),
        sending_institution_id=referral.sending_institution_id,
        claim_token=token,
    )


def let_go(session: Session, *, referral_id: str, claim_token: str) -> None:
    """Drop a claim whose capacity step failed for good: the referral is as it was."""
    session.execute(
        update(Referral)
        .where(col(Referral.id) == referral_id, col(Referral.pending_token) == claim_token)
        .values(
            pending_action=None,
            pending_token=None,
            pending_since=None,
            outcome=case(
                (col(Referral.pending_action) == "discharge", None), else_=col(Referral.outcome)
            ),
        )
    )


def interrupted_claims(session: Session, now: datetime | None = None) -> list[ActionPlan]:
    """Claims older than the lease: their capacity step may or may not have happened."""
    cutoff = (now or utcnow()) - CLAIM_LEASE
    rows = session.exec(
        select(Referral).where(
            col(Referral.pending_token).is_not(None), col(Referral.pending_since) < cutoff
        )
    ).all()
    return [
        ActionPlan(
            referral_id=r.id,
            action=r.pending_action or "",
            receiving_institution_id=r.receiving_institution_id,
            hold_id=r.hold_id,
            facility_id=r.facility_id,
            allocations=list(r.allocations or []),
            sending_institution_id=r.sending_institution_id,
            claim_token=r.pending_token,
        )
        for r in rows
    ]


def apply_action(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    action: str,
    body: ActionBody,
    if_match: int | None,
    allocations: list[dict[str, Any]] | None = None,
    claim_token: str | None = None,
) -> ActionResult:
    """Perform a lifecycle transition by compare-and-set on the version (and, for a claimed
    action, on its claim, which the transition then clears)."""
    referral = get_referral(session, referral_id=referral_id)
    _check_action(
        session,
        principal=principal,
        referral=referral,
        action=action,
        body=body,
        if_match=if_match,
        claim_token=claim_token,
    )
    people = _people(session, referral.id)
    now = utcnow()
    _, target = TRANSITIONS[action]
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "send":
        agreement, missing, sentence = find_binding_agreement(
            session, referral=referral, people=people, today=now.date()
        )
        if agreement is None:
            session.add(
                RefusedAttempt(
                    referral_id=referral.id,
                    sending_institution_id=referral.sending_institution_id,
                    receiving_institution_id=referral.receiving_institution_id,
                    missing=missing,
                    detail=sentence,
                    actor=principal.sub,
                    at=now,
                )
            )
            _event(
                session,
                type="referral.agreement.refused",
                aggregate_type="referral",
                aggregate_id=referral.id,
                version=referral.version,
                principal=principal,
                payload={
                    "referral_id": referral.id,
                    "sending_institution_id": referral.sending_institution_id,
                    "receiving_institution_id": referral.receiving_institution_id,
                    "missing": missing,
                },
            )
            return ActionResult(referral=referral, refused=sentence)
        values["agreement_id"] = agreement.id
        values["sent_at"] = now
        values["response_due_at"] = now + RESPONSE_DEADLINES[referral.urgency]
    elif action == "decline":
        values["decline_reason"] = body.reason
    elif action == "discharge":
        values["outcome"] = body.outcome
    elif action == "admit" and allocations is not None:
        values["allocations"] = allocations
    if action in RELEASING_ACTIONS and referral.hold_id:
        # Released after the commit; until then the expiry sweep retries it.
        values["hold_release_pending"] = True
    old_version = referral.version
    claim = (
        col(Referral.pending_token) == claim_token
        if claim_token
        else col(Referral.pending_token).is_(None)
    )
    result = session.execute(
        update(Referral)
        .where(
            col(Referral.id) == referral.id,
            col(Referral.version) == old_version,
            col(Referral.status) == referral.status,
            claim,
        )
        .values(
            version=old_version + 1,
            pending_action=None,
            pending_token=None,
            pending_since=None,
            **values,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(
            "Otra persona cambió la canalización al mismo tiempo; vuelva a consultarla."
        )
    from_status = referral.status
    session.refresh(referral)
    session.add(
        ReferralHistory(
            referral_id=referral.id,
            action=action,
            from_status=from_status,
            to_status=target,
            version=referral.version,
            actor=principal.sub,
            institution_id=principal.institution_id,
            reason=body.reason,
            at=now,
        )
    )
    extra: dict[str, Any] = {}
    if action == "discharge":
        extra["outcome"] = body.outcome
    _emit_referral(session, referral, people, action, principal, **extra)
    session.flush()
    release = referral.hold_id if action in RELEASING_ACTIONS and referral.hold_id else None
    return ActionResult(referral=referral, release_hold=release)


# --- deadlines ----------------------------------------------------------------------------


def expire_overdue(session: Session, now: datetime | None = None) -> list[tuple[str, str | None]]:
    """Expire sent referrals past their answer deadline; ``[(referral_id, hold_id)]``.

    Each expiry records history, an escalation offering the sender a new search, and an
    event; the caller releases the holds after commit.
    """
    now = now or utcnow()
    overdue = session.exec(
        select(Referral).where(Referral.status == "sent", col(Referral.response_due_at) < now)
    ).all()
    expired: list[tuple[str, str | None]] = []
    for referral in overdue:
        result = session.execute(
            update(Referral)
            .where(
                col(Referral.id) == referral.id,
                col(Referral.version) == referral.version,
                col(Referral.pending_token).is_(None),
            )
            .values(
                status="expired",
                version=referral.version + 1,
                updated_at=now,
                hold_release_pending=referral.hold_id is not None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        session.refresh(referral)
        people = _people(session, referral.id)
        session.add(
            ReferralHistory(
                referral_id=referral.id,
                action="expire",
                from_status="sent",
                to_status="expired",
                version=referral.version,
                actor="system",
                reason="Sin respuesta dentro del plazo.",
                at=now,
            )
        )
        session.add(
            Escalation(
                referral_id=referral.id,
                kind="response_deadline_missed",
                offer={
                    "action": "search_again",
                    "detail": "La receptora no respondió a tiempo; busque otro lugar disponible.",
                    "search": {
                        "people": [{"sex": p.sex, "age": p.age, "role": p.role} for p in people],
                        "state": referral.state,
                    },
                    "exclude_facility_ids": [referral.facility_id],
                },
                at=now,
            )
        )
        _emit_referral(session, referral, people, "expired", None)
        expired.append((referral.id, referral.hold_id))
    session.flush()
    return expired


def pending_releases(session: Session) -> list[tuple[str, str, str]]:
    """``[(referral_id, hold_id, sending_institution_id)]`` of holds still to release."""
    rows = session.exec(select(Referral).where(col(Referral.hold_release_pending).is_(True)))
    return [(r.id, r.hold_id, r.sending_institution_id) for r in rows if r.hold_id]


def mark_released(session: Session, *, referral_id: str) -> None:
    session.execute(
        update(Referral).where(col(Referral.id) == referral_id).values(hold_release_pending=False)
    )


def escalations_awaiting_offer(session: Session) -> list[Escalation]:
    """Escalations whose "next eligible facility" has not been looked up yet."""
    return [
        e
        for e in session.exec(select(Escalation).order_by(col(Escalation.id))).all()
        if e.offer.get("action") == "search_again" and "candidates" not in e.offer
    ]


def record_offer(session: Session, *, escalation_id: int, candidates: list[dict[str, Any]]) -> None:
    """Store the facilities offered to the sender after a missed deadline."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        return
    offer = dict(escalation.offer)
    offer["candidates"] = candidates
    if candidates:
        offer["action"] = "offer_next_facility"
        offer["detail"] = (
            "La receptora no respondió a tiempo; este lugar puede recibir al grupo ahora."
        )
    escalation.offer = offer
    session.add(escalation)


def escalations(session: Session, *, referral_id: str) -> list[Escalation]:
    return list(session.exec(select(Escalation).where(Escalation.referral_id == referral_id)).all())


# --- obligations --------------------------------------------------------------------------


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
    permissions.can_fulfil(principal, obligation.kind, obligation.institution_id)
    if body.humanitarian_visa_status and obligation.kind != "inm_migration_status":
        raise Unprocessable(
            "El estado de visa humanitaria solo aplica a la obligación del INM.",
            code="not_applicable",
        )
    if obligation.status == "fulfilled" and not body.humanitarian_visa_status:
        raise Conflict("La obligación ya está atendida.", code="already_fulfilled")
    now = utcnow()
    if body.humanitarian_visa_status:
        obligation.humanitarian_visa_status = body.humanitarian_visa_status
    obligation.status = "fulfilled"
    obligation.fulfilled_at = now
    obligation.fulfilled_by = principal.sub
    obligation.note = body.note
    session.add(obligation)
    _event(
        session,
        type="referral.obligation.fulfilled",
        aggregate_type="referral",
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
        payload={
            "referral_id": referral.id,
            "obligation_id": obligation.id,
            "kind": obligation.kind,
        },
    )
    session.flush()
    return obligation


# --- disclosure ---------------------------------------------------------------------------


def check_address_disclosure(
    session: Session, *, principal: Principal, referral_id: str
) -> Referral:
    """The sender may learn the facility's address once the referral is accepted."""
    referral = get_referral(session, referral_id=referral_id)
    if not permissions.is_sender(principal, referral.sending_institution_id):
        raise permissions.NotPermitted(
            "Solo la institución remitente conoce la dirección del lugar, tras la aceptación."
        )
    if referral.status not in DISCLOSED_STATUSES:
        raise InvalidTransition(
            "La dirección del lugar se revela solo cuando la receptora acepta la canalización."
        )
    return referral


def record_disclosure(
    session: Session, *, principal: Principal, referral: Referral, what: str
) -> None:
    """Audit a disclosure (``address`` or ``identity``): who learnt what, never the secret."""
    _event(
        session,
        type=f"referral.disclosure.{what}",
        aggregate_type="referral",
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
        payload={
            "referral_id": referral.id,
            "disclosed_to_institution_id": principal.institution_id,
            "facility_id": referral.facility_id,
        },
    )


def disclose_identities(
    session: Session, *, principal: Principal, referral_id: str
) -> list[IdentityPublic]:
    """Names of the people, only to the receiver after acceptance, never under protection."""
    referral = get_referral(session, referral_id=referral_id)
    if not permissions.is_receiver(principal, referral.receiving_institution_id):
        raise permissions.NotPermitted(
            "Las identidades solo se revelan a la institución receptora."
        )
    if referral.status not in DISCLOSED_STATUSES:
        raise InvalidTransition(
            "Las identidades se revelan solo después de aceptar la canalización."
        )
    if referral.witness_protection:
        raise permissions.NotPermitted(
            "Caso bajo protección de testigos: la identidad no se revela a la receptora."
        )
    out = []
    for person in _people(session, referral.id):
        identity = session.get(PersonIdentity, person.id)
        out.append(
            IdentityPublic(
                position=person.position,
                pseudonym=person.pseudonym,
                name=identity.full_name if identity else None,
            )
        )
    record_disclosure(session, principal=principal, referral=referral, what="identity")
    return out


# --- report -------------------------------------------------------------------------------


def outcomes_report(
    session: Session, *, principal: Principal, now: datetime | None = None
) -> list[OutcomeLine]:
    """Referrals by outcome per sending institution; "no information" is its own line."""
    permissions.can_read_report(principal)
    now = now or utcnow()
    counts: dict[tuple[str, str], int] = {}
    for referral in session.exec(select(Referral).where(Referral.status != "draft")).all():
        if referral.status == "discharged":
            key = referral.outcome or "other"
        elif referral.status in CLOSED_STATUSES:
            key = referral.status
        elif referral.status == "sent":
            due = referral.response_due_at
            key = "no_information" if due and as_utc(due) < now else "in_progress"
        elif referral.status in ("accepted", "in_transit"):
            late = as_utc(referral.updated_at) + ADMISSION_DEADLINE < now
            key = "no_information" if late else "in_progress"
        else:
            key = "in_progress"
        counts[(referral.sending_institution_id, key)] = (
            counts.get((referral.sending_institution_id, key), 0) + 1
        )
    labels = {
        **catalogue.OUTCOMES,
        "declined": "Rechazada por la receptora",
        "cancelled": "Cancelada",
        "expired": "Vencida sin respuesta",
        "no_information": "Sin información (S.I.)",
        "in_progress": "En curso",
    }
    return [
        OutcomeLine(sending_institution_id=inst, outcome=key, label=labels[key], count=n)
        for (inst, key), n in sorted(counts.items())
    ]


# --- demo data ----------------------------------------------------------------------------

DEMO_AGREEMENT_NUMBER = "FEVIMTRA/CONV/001/2024"


def load_demo(session: Session) -> int:
    """Seed the demo institutions and a signed FGR ↔ Casa de las Mercedes agreement.

    Idempotent (stable ids; existing rows are kept); returns how many rows it added.
    """
    from canaliza import demo

    now = utcnow()
    added = 0
    for inst in demo.DEMO_INSTITUTIONS:
        if session.get(Institution, inst.id) is None:
            legal_form = "I.A.P." if inst.type == "ngo" and "I.A.P." in inst.name else None
            row = Institution(
                id=inst.id,
                name=inst.name,
                type=inst.type,
                state=inst.state,
                legal_form=legal_form,
                created_at=now,
            )
            session.add(row)
            session.flush()
            session.add(InstitutionName(institution_id=row.id, name=row.name, valid_from=now))
            _institution_created(session, row, None)
            added += 1
    if session.exec(select(Agreement).where(Agreement.number == DEMO_AGREEMENT_NUMBER)).first():
        session.flush()
        return added
    agreement = Agreement(
        number=DEMO_AGREEMENT_NUMBER,
        title="Convenio de colaboración para la canalización y atención de víctimas de trata",
        valid_from=date(2024, 1, 1),
        valid_to=date(2030, 12, 31),
        status="signed",
        scope_sexes=list(catalogue.SEXES),
        scope_age_groups=list(catalogue.AGE_GROUPS),
        scope_services=[],
        scope_states=[],
        created_by="seed",
        created_at=now,
        signed_at=now,
    )
    session.add(agreement)
    session.flush()
    for party in (demo.FGR, demo.CASA_MERCEDES):
        session.add(
            AgreementParty(
                agreement_id=agreement.id,
                institution_id=party.id,
                signed_by="seed",
                signed_at=now,
            )
        )
    session.flush()
    return added + 1

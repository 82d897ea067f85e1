"""Agreements (convenios): drafting, signatures, revocation, the signed document, and the
rule of which agreement lets a referral travel."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from referral import catalogue, cms, events, permissions
from referral.database import outbox
from referral.exceptions import AgreementNotFound, InvalidTransition
from referral.institutions import get_institution
from referral.models import Agreement, AgreementParty, Referral, ReferralPerson
from referral.records import text_keyed_page
from referral.schemas import AgreementCreate, AgreementPublic
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal


def effective_status(agreement: Agreement, today: date) -> str:
    """The stored status, with a signed agreement past its end date shown as expired."""
    if agreement.status == "signed" and agreement.valid_to < today:
        return "expired"
    return agreement.status


def parties_of(session: Session, agreement_id: str) -> list[AgreementParty]:
    return list(
        session.exec(
            select(AgreementParty)
            .where(AgreementParty.agreement_id == agreement_id)
            .order_by(col(AgreementParty.institution_id))
        ).all()
    )


def _party_ids(session: Session, agreement_id: str) -> list[str]:
    return [p.institution_id for p in parties_of(session, agreement_id)]


def agreement_public(session: Session, agreement: Agreement) -> AgreementPublic:
    status = effective_status(agreement, utcnow().date())
    return AgreementPublic.of(agreement, parties_of(session, agreement.id), status=status)


def get_agreement(session: Session, *, agreement_id: str) -> Agreement:
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        raise AgreementNotFound(f"No existe el convenio {agreement_id}.")
    return agreement


def list_agreements(
    session: Session, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Agreement], str | None]:
    """Agreements by number; with ``limit`` one page, and the next one's cursor (``None``:
    the last)."""
    return text_keyed_page(
        session,
        select(Agreement),
        (col(Agreement.number), col(Agreement.id)),
        key_of=lambda a: (a.number, a.id),
        limit=limit,
        cursor=cursor,
    )


def create_agreement(session: Session, *, principal: Principal, data: AgreementCreate) -> Agreement:
    """Register a convenio in draft, with its parties and scope."""
    permissions.ensure_can_create_agreement(principal, data.party_ids)
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
    emit(
        outbox,
        session,
        events.agreement_created(agreement, data.party_ids),
        aggregate_id=agreement.id,
        version=1,
        principal=principal,
    )
    session.flush()
    return agreement


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
    permissions.ensure_can_manage_agreement(principal, _party_ids(session, agreement.id))
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
    permissions.ensure_can_sign_agreement(principal, institution_id)
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
    all_signed = all(p.signed_at is not None for p in parties_of(session, agreement.id))
    values: dict[str, Any] = {"status": "signed" if all_signed else "ready_for_signature"}
    if all_signed:
        values["signed_at"] = now
    _bump(session, agreement, **values)
    emit(
        outbox,
        session,
        events.agreement_signature(agreement, institution_id=institution_id, all_signed=all_signed),
        aggregate_id=agreement.id,
        version=agreement.version,
        principal=principal,
    )
    return agreement


def revoke_agreement(
    session: Session, *, principal: Principal, agreement_id: str, reason: str | None
) -> Agreement:
    agreement = get_agreement(session, agreement_id=agreement_id)
    permissions.ensure_can_manage_agreement(principal, _party_ids(session, agreement.id))
    if agreement.status == "revoked":
        raise InvalidTransition("El convenio ya está revocado.")
    _bump(session, agreement, status="revoked", revoked_at=utcnow(), revoke_reason=reason)
    emit(
        outbox,
        session,
        events.agreement_revoked(agreement),
        aggregate_id=agreement.id,
        version=agreement.version,
        principal=principal,
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
    permissions.ensure_can_manage_agreement(principal, _party_ids(session, agreement.id))
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


# --- which agreement lets a referral travel ---------------------------------------------------


def check_chosen_agreement(
    session: Session, *, agreement_id: str, sender: str, receiver: str, today: date
) -> None:
    """The agreement a sender names must be signed, in force and bind both institutions."""
    agreement = session.get(Agreement, agreement_id)
    if agreement is None:
        problem = f"No existe el convenio {agreement_id}."
    elif not {sender, receiver} <= set(_party_ids(session, agreement.id)):
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


def find_binding_agreement(
    session: Session, *, referral: Referral, people: Sequence[ReferralPerson], today: date
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
    # A person whose sex is not recorded is covered only by an agreement open to every sex.
    sexes = {s for p in people for s in ((p.sex,) if p.sex is not None else catalogue.EVERY_SEX)}
    groups = {catalogue.age_group(p.age) for p in people}
    last = ("scope", "")
    for agreement in in_force:
        if not sexes <= set(agreement.scope_sexes):
            missing = ", ".join(sorted(sexes - set(agreement.scope_sexes)))
            if any(p.sex is None for p in people):
                missing += " (una persona sin sexo registrado requiere un convenio para F, M y X)"
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

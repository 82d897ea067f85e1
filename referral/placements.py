"""Paths the law takes beyond a referral along an agreement (ADR 0021).

- **Urgent placement without an agreement** (``003:1003``: urgent care without
  prerequisites): an urgent referral with the sender's written justification may be sent
  along no agreement; the receiver may still decline; SEGOB counts it and both
  institutions' admins are alerted to formalise an agreement. ``CANALIZA_URGENT_WITHOUT_
  AGREEMENT=0`` turns it off for a deployment.
- **Onward transfer** (``002:403, 456, 497, 549``): a shelter refers a person it has
  admitted to another place; the new referral continues the one before it (its people are
  the same victims), and the person's path is the chain of referrals.
"""

from __future__ import annotations

from sqlalchemy import or_
from sqlmodel import Session, col, select

from referral import events, permissions
from referral.agreements import find_binding_agreement
from referral.database import outbox
from referral.exceptions import InvalidTransition, ReferralNotFound
from referral.institutions import get_institution
from referral.models import PersonIdentity, Referral, ReferralPerson
from referral.records import get_referral, people_of
from referral.schemas import AgreementAlert, PathStep, ReferralCreate
from referral.states import CLOSED_STATUSES
from services.clock import as_utc, utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.settings import get_settings
from services.tokens import Principal
from services.vocabulary import ReferralStatus

# A path longer than this is a loop or a fault, never a person's real path.
MAX_PATH = 50


# --- urgent placement without an agreement --------------------------------------------------


def without_agreement_allowed() -> bool:
    return get_settings().urgent_without_agreement


def check_without_agreement(principal: Principal, data: ReferralCreate) -> None:
    """The request for an urgent placement along no agreement: allowed here, by this role,
    urgent, justified in writing, and naming no agreement."""
    if not data.without_agreement:
        return
    if not without_agreement_allowed():
        raise Conflict(
            "without_agreement: en esta instalación de Canaliza no se permite canalizar sin "
            "convenio; toda canalización viaja por un convenio firmado.",
            code="urgent_without_agreement_disabled",
        )
    permissions.ensure_can_place_without_agreement(
        principal, onward=data.previous_referral_id is not None
    )
    if data.urgency != "urgent":
        raise Unprocessable(
            "urgency: solo una canalización urgente (urgency «urgent») puede enviarse sin "
            "convenio.",
            code="urgency_required",
        )
    if not (data.without_agreement_justification or "").strip():
        raise Unprocessable(
            "without_agreement_justification: una canalización urgente sin convenio requiere "
            "la justificación por escrito.",
            code="justification_required",
        )
    if data.agreement_id is not None:
        raise Unprocessable(
            "agreement_id: una canalización sin convenio no puede nombrar un convenio.",
            code="agreement_with_without_agreement",
        )


def send_without_agreement(session: Session, *, principal: Principal, referral: Referral) -> bool:
    """At sending, with no binding agreement: whether this referral may travel anyway (an
    urgent placement without agreement, still allowed here); if so its event is recorded."""
    if not (referral.without_agreement and without_agreement_allowed()):
        return False
    emit(
        outbox,
        session,
        events.placed_without_agreement(referral),
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )
    return True


def agreement_alerts(session: Session, *, principal: Principal) -> list[AgreementAlert]:
    """For an institution's admin: the institutions it exchanged urgent placements with along
    no agreement, while no agreement binds the pair today (formalise one)."""
    permissions.ensure_can_read_agreement_alerts(principal)
    inst = principal.institution_id
    query = select(Referral).where(
        col(Referral.without_agreement).is_(True), col(Referral.sent_at).is_not(None)
    )
    if inst:
        query = query.where(
            or_(
                col(Referral.sending_institution_id) == inst,
                col(Referral.receiving_institution_id) == inst,
            )
        )
    pairs: dict[tuple[str, str], list[Referral]] = {}
    for r in session.exec(query.order_by(col(Referral.sent_at))).all():
        pairs.setdefault((r.sending_institution_id, r.receiving_institution_id), []).append(r)
    today = utcnow().date()
    alerts: dict[str, AgreementAlert] = {}
    for (sender, receiver), refs in pairs.items():
        latest = refs[-1]
        agreement, _, _ = find_binding_agreement(
            session, referral=latest, people=people_of(session, latest.id), today=today
        )
        if agreement is not None:
            continue  # formalised since
        ours = sender == inst
        other = receiver if ours else sender
        alert = alerts.get(other) or AgreementAlert(
            other_institution_id=other,
            other_institution_name=get_institution(session, institution_id=other).name,
            sent_by_us=0,
            received_by_us=0,
            last_at=as_utc(latest.sent_at or latest.created_at),
            referral_ids=[],
        )
        if ours:
            alert.sent_by_us += len(refs)
        else:
            alert.received_by_us += len(refs)
        alert.referral_ids.extend(r.id for r in refs)
        alert.last_at = max(alert.last_at, as_utc(latest.sent_at or latest.created_at))
        alerts[other] = alert
    return sorted(alerts.values(), key=lambda a: a.last_at, reverse=True)


# --- onward transfer ------------------------------------------------------------------------


def previous_for_transfer(
    session: Session, *, principal: Principal, data: ReferralCreate
) -> Referral | None:
    """The admitted referral an onward transfer leaves from, checked: the sender is the
    institution that admitted the people, they are admitted now, and no other transfer of
    theirs is under way."""
    if data.previous_referral_id is None:
        return None
    previous = session.get(Referral, data.previous_referral_id)
    if previous is None or previous.receiving_institution_id != data.sending_institution_id:
        # The same answer for none and for another institution's (no existence oracle).
        raise ReferralNotFound(
            f"previous_referral_id: no existe la canalización {data.previous_referral_id} "
            "entre las recibidas por la institución remitente."
        )
    if previous.status != ReferralStatus.ADMITTED:
        label = ReferralStatus(previous.status).label.lower()
        raise InvalidTransition(
            "previous_referral_id: solo se canaliza a otro lugar a una persona ingresada; "
            f"esa canalización está «{label}».",
            code="not_admitted",
        )
    under_way = session.exec(
        select(Referral.id).where(
            Referral.previous_referral_id == previous.id,
            col(Referral.status).not_in(CLOSED_STATUSES),
        )
    ).first()
    if under_way is not None:
        raise Conflict(
            f"previous_referral_id: ya hay una canalización a otro lugar en curso ({under_way}) "
            "para estas personas.",
            code="transfer_in_progress",
        )
    return previous


def carry_people(
    session: Session, *, previous: Referral, referral: Referral
) -> list[ReferralPerson]:
    """The people of the referral before, as the same people of the new one (with their
    names, which reach the new receiver only after it accepts)."""
    carried: list[ReferralPerson] = []
    for person in people_of(session, previous.id):
        row = ReferralPerson(
            referral_id=referral.id,
            position=person.position,
            sex=person.sex,
            age=person.age,
            role=person.role,
            nationality=person.nationality,
            pseudonym=person.pseudonym,
            previous_person_id=person.id,
            state_of_origin=person.state_of_origin,
            languages=list(person.languages or []),
            vulnerable_groups=None
            if person.vulnerable_groups is None
            else list(person.vulnerable_groups),
            offences=list(person.offences or []),
            # The same person: statistics count her once (ADR 0019).
            person_key=person.person_key,
        )
        session.add(row)
        session.flush()
        identity = session.get(PersonIdentity, person.id)
        if identity is not None:
            session.add(PersonIdentity(person_id=row.id, full_name=identity.full_name))
        carried.append(row)
    return carried


def _chain(session: Session, referral: Referral) -> list[Referral]:
    """The referrals of one person's path through ``referral``: back to where it began,
    then forward, each step with the transfers tried from it (declined, cancelled)."""
    head, hops = referral, 0
    while head.previous_referral_id and hops < MAX_PATH:
        head, hops = get_referral(session, referral_id=head.previous_referral_id), hops + 1
    chain, current = [head], head
    while len(chain) < MAX_PATH:
        tried = session.exec(
            select(Referral)
            .where(Referral.previous_referral_id == current.id)
            .order_by(col(Referral.created_at).desc())
        ).all()
        if not tried:
            break
        # Only an admitted person is sent on, one transfer at a time: the step that is
        # under way, or else the latest, is where the path goes next.
        going = next((r for r in tried if r.status not in CLOSED_STATUSES), tried[0])
        chain.extend(r for r in tried if r is not going)
        chain.append(going)
        current = going
    return chain


def path_of(session: Session, *, referral: Referral) -> list[PathStep]:
    """One person's path as one timeline (the caller may see ``referral``): every referral
    of the chain, oldest first, without people or addresses."""
    steps = sorted(_chain(session, referral), key=lambda r: as_utc(r.created_at))
    return [PathStep.of(r) for r in steps]

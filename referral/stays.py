"""Stays and aftercare (ADR 0022; ``002:384, 397-415``, ``003:563``).

The stay counts days from admission; the facility's ``max_stay_days`` plus the recorded
extensions is its limit, and the alert says when it is near (``WARNING_DAYS``), reached or
passed. An extension names its reason (risk, physical or psychological instability) and who
approved it. After discharge, follow-up contacts are planned and their results recorded;
during the stay, the services each person received are recorded (the monthly report counts
them). The receiving institution's staff record all of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, SQLModel, col, select

from referral import events, permissions
from referral.database import outbox
from referral.exceptions import InvalidTransition, ReferralNotFound
from referral.models import (
    FollowUp,
    Referral,
    ReferralHistory,
    ReferralPerson,
    ServiceProvided,
    StayExtension,
)
from referral.records import people_of
from referral.referrals import visible_referral
from referral.schemas import (
    ExtensionIn,
    ExtensionPublic,
    FollowUpPlan,
    FollowUpPublic,
    FollowUpResultIn,
    ServiceProvidedIn,
    ServiceProvidedPublic,
    StayPerson,
    StayPublic,
)
from services.clock import as_utc, utcnow
from services.contracts import EventPayload, emit
from services.errors import Unprocessable
from services.tokens import Principal
from services.vocabulary import ReferralStatus

# How many days before the maximum the coordinator (and SEGOB's roster) is warned.
WARNING_DAYS = 14
# The standard follow-up schedule: contacts one, three and six months after discharge.
FOLLOW_UP_SCHEDULE_DAYS = (30, 90, 180)
ALERT_LABELS = {
    "none": "Dentro del plazo de estancia",
    "approaching": "Se acerca la estancia máxima",
    "reached": "Alcanzó la estancia máxima",
    "exceeded": "Rebasó la estancia máxima sin prórroga",
}


def _step_at(session: Session, referral_id: str, action: str) -> datetime | None:
    row = session.exec(
        select(ReferralHistory)
        .where(ReferralHistory.referral_id == referral_id, ReferralHistory.action == action)
        .order_by(col(ReferralHistory.id))
    ).first()
    return as_utc(row.at) if row else None


def _record(
    session: Session, referral: Referral, principal: Principal, row: SQLModel, payload: EventPayload
) -> None:
    """Store a row of the stay and announce it, in the same transaction."""
    session.add(row)
    session.flush()
    emit(
        outbox,
        session,
        payload,
        aggregate_id=referral.id,
        version=referral.version,
        principal=principal,
    )


def stay_alert(days: int | None, limit: int | None) -> str:
    """``none``, ``approaching`` (within ``WARNING_DAYS``), ``reached`` or ``exceeded``."""
    if days is None or limit is None:
        return "none"
    if days > limit:
        return "exceeded"
    if days == limit:
        return "reached"
    return "approaching" if limit - days <= WARNING_DAYS else "none"


def stay_view(
    session: Session,
    referral: Referral,
    *,
    max_stay_days: int | None,
    now: datetime | None = None,
) -> StayPublic:
    """The stay of a referral the caller may see, against the facility's maximum."""
    now = now or utcnow()
    admitted = _step_at(session, referral.id, "admit")
    discharged = _step_at(session, referral.id, "discharge")
    in_care = referral.status == ReferralStatus.ADMITTED
    days = None
    if admitted is not None and (in_care or discharged is not None):
        days = ((discharged if discharged and not in_care else now) - admitted).days
    extensions = list(
        session.exec(
            select(StayExtension)
            .where(StayExtension.referral_id == referral.id)
            .order_by(col(StayExtension.id))
        ).all()
    )
    extended = sum(e.days for e in extensions)
    limit = max_stay_days + extended if max_stay_days is not None else None
    alert = stay_alert(days, limit) if in_care else "none"
    follow_ups = session.exec(
        select(FollowUp)
        .where(FollowUp.referral_id == referral.id)
        .order_by(col(FollowUp.due_on), col(FollowUp.id))
    ).all()
    people = people_of(session, referral.id)
    positions = {p.id: p.position for p in people}
    services = session.exec(
        select(ServiceProvided)
        .where(ServiceProvided.referral_id == referral.id)
        .order_by(col(ServiceProvided.provided_on), col(ServiceProvided.id))
    ).all()
    return StayPublic(
        referral_id=referral.id,
        status=referral.status,
        admitted_at=admitted,
        discharged_at=discharged,
        days=days,
        max_stay_days=max_stay_days,
        extended_days=extended,
        limit_days=limit,
        days_left=limit - days if limit is not None and days is not None and in_care else None,
        alert=alert,  # type: ignore[arg-type]
        alert_label=ALERT_LABELS[alert],
        people=[StayPerson(person_id=p.id, position=p.position, role=p.role) for p in people],
        extensions=[ExtensionPublic.of(e) for e in extensions],
        follow_ups=[FollowUpPublic.of(f, now.date()) for f in follow_ups],
        services=[ServiceProvidedPublic.of(s, positions.get(s.person_id, 0)) for s in services],
    )


def _receiver_referral(
    session: Session, principal: Principal, referral_id: str, *, status: str, doing: str
) -> Referral:
    permissions.ensure_can_record_stays(principal)
    referral = visible_referral(session, principal=principal, referral_id=referral_id)
    permissions.ensure_can_record_stay(principal, referral.receiving_institution_id)
    if referral.status != status:
        label = ReferralStatus(referral.status).label.lower()
        raise InvalidTransition(
            f"{doing} solo procede con la canalización «{ReferralStatus(status).label.lower()}»; "
            f"está «{label}».",
            code="not_" + status,
        )
    return referral


def add_extension(
    session: Session, *, principal: Principal, referral_id: str, body: ExtensionIn
) -> ExtensionPublic:
    """Extend an admitted person's stay: with its reason and who approved it."""
    referral = _receiver_referral(
        session, principal, referral_id, status=ReferralStatus.ADMITTED, doing="Prorrogar"
    )
    if body.reason is None:
        raise Unprocessable(
            "La prórroga de la estancia requiere el motivo (reason): riesgo, inestabilidad "
            "física o psicológica, u otro.",
            code="reason_required",
        )
    if not (body.detail and body.detail.strip()):
        raise Unprocessable(
            "La prórroga de la estancia requiere describir el motivo (detail).",
            code="detail_required",
        )
    if not (body.approved_by and body.approved_by.strip()):
        raise Unprocessable(
            "La prórroga de la estancia requiere quién la aprobó (approved_by).",
            code="approver_required",
        )
    extension = StayExtension(
        referral_id=referral.id,
        days=body.days,
        reason=body.reason,
        detail=body.detail.strip(),
        approved_by=body.approved_by.strip(),
        recorded_by=principal.sub,
        at=utcnow(),
    )
    _record(session, referral, principal, extension, events.stay_extended(referral, extension))
    return ExtensionPublic.of(extension)


def plan_follow_up(
    session: Session, *, principal: Principal, referral_id: str, body: FollowUpPlan
) -> FollowUpPublic:
    """Plan a follow-up contact after discharge, on or after the day of discharge."""
    referral = _receiver_referral(
        session, principal, referral_id, status=ReferralStatus.DISCHARGED, doing="El seguimiento"
    )
    discharged = _step_at(session, referral.id, "discharge")
    if discharged is not None and body.due_on < discharged.date():
        raise Unprocessable(
            "La fecha del seguimiento (due_on) no puede ser anterior al egreso.",
            code="due_before_discharge",
        )
    follow_up = FollowUp(
        referral_id=referral.id, due_on=body.due_on, recorded_by=principal.sub, at=utcnow()
    )
    _record(session, referral, principal, follow_up, events.follow_up_recorded(referral, follow_up))
    return FollowUpPublic.of(follow_up, utcnow().date())


def plan_schedule(
    session: Session, *, principal: Principal, referral_id: str
) -> list[FollowUpPublic]:
    """Plan the standard follow-up contacts after discharge (days already planned are kept)."""
    referral = _receiver_referral(
        session, principal, referral_id, status=ReferralStatus.DISCHARGED, doing="El seguimiento"
    )
    discharged = _step_at(session, referral.id, "discharge") or utcnow()
    planned = set(
        session.exec(select(col(FollowUp.due_on)).where(FollowUp.referral_id == referral.id)).all()
    )
    today = utcnow().date()
    out = []
    for days in FOLLOW_UP_SCHEDULE_DAYS:
        due = discharged.date() + timedelta(days=days)
        if due in planned:
            continue
        follow_up = FollowUp(
            referral_id=referral.id, due_on=due, recorded_by=principal.sub, at=utcnow()
        )
        _record(
            session, referral, principal, follow_up, events.follow_up_recorded(referral, follow_up)
        )
        out.append(FollowUpPublic.of(follow_up, today))
    return out


def record_follow_up(
    session: Session,
    *,
    principal: Principal,
    referral_id: str,
    follow_up_id: str,
    body: FollowUpResultIn,
) -> FollowUpPublic:
    """The result of a planned follow-up contact."""
    referral = _receiver_referral(
        session, principal, referral_id, status=ReferralStatus.DISCHARGED, doing="El seguimiento"
    )
    follow_up = session.get(FollowUp, int(follow_up_id)) if follow_up_id.isdigit() else None
    if follow_up is None or follow_up.referral_id != referral.id:
        raise ReferralNotFound("No existe ese seguimiento en la canalización.")
    today = utcnow().date()
    if body.done_on > today:
        raise Unprocessable(
            "La fecha del contacto (done_on) no puede ser futura.", code="done_in_future"
        )
    follow_up.done_on = body.done_on
    follow_up.result = body.result
    follow_up.note = body.note
    follow_up.recorded_by = principal.sub
    follow_up.at = utcnow()
    _record(session, referral, principal, follow_up, events.follow_up_recorded(referral, follow_up))
    return FollowUpPublic.of(follow_up, today)


def record_service(
    session: Session, *, principal: Principal, referral_id: str, body: ServiceProvidedIn
) -> ServiceProvidedPublic:
    """A service given to one admitted person of the referral."""
    referral = _receiver_referral(
        session,
        principal,
        referral_id,
        status=ReferralStatus.ADMITTED,
        doing="Registrar servicios",
    )
    person = session.get(ReferralPerson, body.person_id)
    if person is None or person.referral_id != referral.id:
        raise Unprocessable(
            "La persona indicada (person_id) no es de esta canalización.", code="unknown_person"
        )
    admitted = _step_at(session, referral.id, "admit")
    if body.provided_on > utcnow().date() or (
        admitted is not None and body.provided_on < admitted.date()
    ):
        raise Unprocessable(
            "La fecha del servicio (provided_on) debe caer entre el ingreso y hoy.",
            code="provided_on_out_of_stay",
        )
    service = ServiceProvided(
        referral_id=referral.id,
        person_id=person.id,
        service=body.service,
        provided_on=body.provided_on,
        recorded_by=principal.sub,
        at=utcnow(),
    )
    _record(session, referral, principal, service, events.service_provided(referral, service))
    return ServiceProvidedPublic.of(service, person.position)

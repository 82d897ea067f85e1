"""The referral service's own report: referrals by outcome per sending institution."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from referral import permissions
from referral.models import Referral
from referral.schemas import OutcomeLine
from referral.states import ADMISSION_DEADLINE, CLOSED_STATUSES
from services.clock import as_utc, utcnow
from services.tokens import Principal
from services.vocabulary import Outcome, ReferralStatus

NO_INFORMATION = "no_information"
IN_PROGRESS = "in_progress"
LABELS = {
    **Outcome.labels(),
    ReferralStatus.DECLINED.value: "Rechazada por la receptora",
    ReferralStatus.CANCELLED.value: "Cancelada",
    ReferralStatus.EXPIRED.value: "Vencida sin respuesta",
    NO_INFORMATION: "Sin información (S.I.)",
    IN_PROGRESS: "En curso",
}


def _line(referral: Referral, now: datetime) -> str:
    """The report line a referral counts in: its outcome, its closing or its progress."""
    status = referral.status
    if status == ReferralStatus.DISCHARGED:
        return referral.outcome or Outcome.OTHER.value
    if status in CLOSED_STATUSES:
        return status
    if status == ReferralStatus.SENT:
        due = referral.response_due_at
        return NO_INFORMATION if due and as_utc(due) < now else IN_PROGRESS
    if status in (ReferralStatus.ACCEPTED, ReferralStatus.IN_TRANSIT):
        late = as_utc(referral.updated_at) + ADMISSION_DEADLINE < now
        return NO_INFORMATION if late else IN_PROGRESS
    return IN_PROGRESS


def outcomes_report(
    session: Session, *, principal: Principal, now: datetime | None = None
) -> list[OutcomeLine]:
    """Referrals by outcome per sending institution; "no information" is its own line."""
    permissions.ensure_can_read_report(principal)
    now = now or utcnow()
    counts: dict[tuple[str, str], int] = {}
    for referral in session.exec(
        select(Referral).where(Referral.status != ReferralStatus.DRAFT)
    ).all():
        key = (referral.sending_institution_id, _line(referral, now))
        counts[key] = counts.get(key, 0) + 1
    return [
        OutcomeLine(sending_institution_id=inst, outcome=key, label=LABELS[key], count=n)
        for (inst, key), n in sorted(counts.items())
    ]

"""Loading a referral and what hangs off it (the lookups every referral module shares)."""

from __future__ import annotations

from sqlmodel import Session, col, select

from referral.exceptions import ReferralNotFound
from referral.models import Obligation, Referral, ReferralHistory, ReferralPerson
from services.contracts.statistics import step_times as _step_times


def get_referral(session: Session, *, referral_id: str) -> Referral:
    referral = session.get(Referral, referral_id)
    if referral is None:
        raise ReferralNotFound(f"No existe la canalización {referral_id}.")
    return referral


def people_of(session: Session, referral_id: str) -> list[ReferralPerson]:
    return list(
        session.exec(
            select(ReferralPerson)
            .where(ReferralPerson.referral_id == referral_id)
            .order_by(col(ReferralPerson.position))
        ).all()
    )


def obligations_of(session: Session, referral_id: str) -> list[Obligation]:
    return list(
        session.exec(
            select(Obligation)
            .where(Obligation.referral_id == referral_id)
            .order_by(col(Obligation.kind))
        ).all()
    )


def history_of(session: Session, referral_id: str) -> list[ReferralHistory]:
    return list(
        session.exec(
            select(ReferralHistory)
            .where(ReferralHistory.referral_id == referral_id)
            .order_by(col(ReferralHistory.id))
        ).all()
    )


def obligation_institutions(session: Session, referral_id: str) -> set[str]:
    return {
        o.institution_id
        for o in session.exec(select(Obligation).where(Obligation.referral_id == referral_id))
        if o.institution_id
    }


def step_times(session: Session, referral_id: str) -> dict[str, str]:
    """When each status of the referral began (its history, flushed first), as events carry it."""
    session.flush()
    rows = session.execute(
        select(ReferralHistory.to_status, ReferralHistory.at)
        .where(ReferralHistory.referral_id == referral_id)
        .order_by(col(ReferralHistory.id))
    ).all()
    return _step_times((str(status), at) for status, at in rows)

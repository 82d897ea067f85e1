"""Deadlines: expiry of unanswered referrals, the holds left to release, and the escalations
that offer the sender a new search (and, once looked up, the next facilities)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from referral import events, records
from referral.database import outbox
from referral.models import Escalation, Referral, ReferralHistory, ReferralPerson
from referral.records import people_of
from services.clock import utcnow
from services.contracts import emit
from services.vocabulary import ReferralStatus

SEARCH_AGAIN = "search_again"
OFFER_NEXT_FACILITY = "offer_next_facility"
OFFERED_FACILITIES = 3


def _search_again(referral: Referral, people: list[ReferralPerson]) -> dict[str, Any]:
    return {
        "action": SEARCH_AGAIN,
        "detail": "La receptora no respondió a tiempo; busque otro lugar disponible.",
        "search": {
            "people": [{"sex": p.sex, "age": p.age, "role": p.role} for p in people],
            "state": referral.state,
        },
        "exclude_facility_ids": [referral.facility_id],
    }


def expire_overdue(session: Session, now: datetime | None = None) -> list[tuple[str, str | None]]:
    """Expire sent referrals past their answer deadline; ``[(referral_id, hold_id)]``.

    Each expiry records history, an escalation offering the sender a new search, and an
    event; the caller releases the holds after commit.
    """
    now = now or utcnow()
    overdue = session.exec(
        select(Referral).where(
            Referral.status == ReferralStatus.SENT, col(Referral.response_due_at) < now
        )
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
                status=ReferralStatus.EXPIRED,
                version=referral.version + 1,
                updated_at=now,
                hold_release_pending=referral.hold_id is not None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            continue
        session.refresh(referral)
        people = people_of(session, referral.id)
        session.add(
            ReferralHistory(
                referral_id=referral.id,
                action="expire",
                from_status=ReferralStatus.SENT,
                to_status=ReferralStatus.EXPIRED,
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
                offer=_search_again(referral, people),
                at=now,
            )
        )
        emit(
            outbox,
            session,
            events.referral_changed(
                referral, people, "expired", records.step_times(session, referral.id)
            ),
            aggregate_id=referral.id,
            version=referral.version,
            principal=None,
        )
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


def escalations_awaiting_offer(session: Session) -> list[tuple[int, dict[str, Any]]]:
    """``[(escalation_id, offer)]`` of escalations whose "next eligible facility" has not
    been looked up yet."""
    return [
        (e.id, dict(e.offer))
        for e in session.exec(select(Escalation).order_by(col(Escalation.id))).all()
        if e.id is not None
        and e.offer.get("action") == SEARCH_AGAIN
        and "candidates" not in e.offer
    ]


def next_candidates(offer: dict[str, Any], found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The facilities to offer: the first few found, never the one that did not answer."""
    excluded = set(offer.get("exclude_facility_ids") or [])
    return [f for f in found if f["facility_id"] not in excluded][:OFFERED_FACILITIES]


def record_offer(session: Session, *, escalation_id: int, candidates: list[dict[str, Any]]) -> None:
    """Store the facilities offered to the sender after a missed deadline."""
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        return
    offer = dict(escalation.offer)
    offer["candidates"] = candidates
    if candidates:
        offer["action"] = OFFER_NEXT_FACILITY
        offer["detail"] = (
            "La receptora no respondió a tiempo; este lugar puede recibir al grupo ahora."
        )
    escalation.offer = offer
    session.add(escalation)


def escalations(session: Session, *, referral_id: str) -> list[dict[str, Any]]:
    """A referral's escalations as answered: kind, offer and time."""
    return [
        {"kind": e.kind, "offer": e.offer, "at": e.at}
        for e in session.exec(select(Escalation).where(Escalation.referral_id == referral_id))
    ]

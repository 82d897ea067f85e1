"""Loading a referral and what hangs off it (the lookups every referral module shares)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from referral.exceptions import ReferralNotFound
from referral.models import Obligation, Referral, ReferralHistory, ReferralPerson
from services.contracts.statistics import step_times as _step_times
from services.pages import after, page_key, split_page

T = TypeVar("T")


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


def text_keyed_page(
    session: Session,
    query: SelectOfScalar[T],
    order: Sequence[Any],
    *,
    key_of: Callable[[T], tuple[str, str]],
    limit: int | None,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """A reference list ordered by two text columns (a name or number, then the id): the
    rows after ``cursor``, one page of ``limit`` (all of them without) and the next cursor."""
    key = page_key(cursor, str, str)
    query = query.order_by(*order)
    if key is not None:
        query = query.where(after(order, key))
    if limit is None:
        return list(session.exec(query).all()), None
    return split_page(session.exec(query.limit(limit + 1)).all(), limit, key_of)

"""Unmet demand: what a search could not place, kept by category (never an identity)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from capacity.events import record, search_unmet
from capacity.models import UnmetRequest
from capacity.search import PersonQ
from services.clock import utcnow
from services.tokens import Principal
from services.vocabulary import cndh_age_band


def people_summary(people: Sequence[PersonQ]) -> list[dict[str, Any]]:
    """The group as categories: sex, age group, the CNDH age band and role of each."""
    return [
        {
            "sex": p.sex,
            "age_group": p.age_group(),
            "age_band": cndh_age_band(p.age),
            "role": p.role,
        }
        for p in people
    ]


def _focus_band(people: list[dict[str, Any]], focus: dict[str, Any]) -> str | None:
    index = focus.get("person")
    if isinstance(index, int) and 0 <= index < len(people):
        band = people[index].get("age_band")
        return str(band) if band is not None else None
    return None


def _earlier(session: Session, institution: str, intent_key: str | None) -> UnmetRequest | None:
    return session.exec(
        select(UnmetRequest).where(
            UnmetRequest.institution_id == institution, UnmetRequest.intent_key == intent_key
        )
    ).first()


def record_unmet(
    session: Session,
    *,
    principal: Principal,
    people: list[dict[str, Any]],
    state: str | None,
    code: str,
    reason: str,
    focus: dict[str, Any],
    needs: dict[str, Any] | None = None,
    intent_key: str | None = None,
) -> UnmetRequest:
    """Keep what could not be placed (categories only, never identities), what else was
    needed and why it failed, and tell the bus. A search intent (``intent_key``: one
    prosecutor's case, re-run by her page on every capacity change) is recorded once: a
    re-run answers the row already kept, and nothing is counted again."""
    institution = principal.institution_id or principal.sub
    if intent_key is not None:
        earlier = _earlier(session, institution, intent_key)
        if earlier is not None:
            return earlier
    row = UnmetRequest(
        needs=needs,
        institution_id=institution if intent_key is not None else None,
        intent_key=intent_key,
        sex=focus["sex"],
        age_group=focus["age_group"],
        state=state,
        group_size=len(people),
        people=people,
        code=code,
        reason=reason[:1000],
        at=utcnow(),
    )
    try:
        with session.begin_nested():  # the same intent re-run at the same instant: one row
            session.add(row)
    except IntegrityError:
        return _earlier(session, institution, intent_key)  # type: ignore[return-value]
    record(
        session,
        search_unmet(row, people=people, age_band=_focus_band(people, focus)),
        aggregate_id=row.id,
        version=1,
        actor=principal,
    )
    return row

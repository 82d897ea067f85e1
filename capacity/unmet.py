"""Unmet demand: what a search could not place, kept by category (never an identity)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

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


def record_unmet(
    session: Session,
    *,
    principal: Principal,
    people: list[dict[str, Any]],
    state: str | None,
    code: str,
    reason: str,
    focus: dict[str, Any],
) -> UnmetRequest:
    """Keep what could not be placed (categories only, never identities) and tell the bus."""
    row = UnmetRequest(
        sex=focus["sex"],
        age_group=focus["age_group"],
        state=state,
        group_size=len(people),
        people=people,
        code=code,
        reason=reason[:1000],
        at=utcnow(),
    )
    session.add(row)
    session.flush()
    record(
        session,
        search_unmet(row, people=people, age_band=_focus_band(people, focus)),
        aggregate_id=row.id,
        version=1,
        actor=principal,
    )
    return row

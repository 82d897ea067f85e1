"""The referral list: the referrals a caller may see, searched and filtered, a page at a time.

Pages are keyset pages (``services.pages``) over the list's one order, newest first
(``created_at`` desc, ``id`` desc), on top of the same visibility filter as a single
referral: a cursor only says where the last page ended, never widens what is seen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, false, or_, true
from sqlmodel import Session, col, select

from referral import permissions
from referral.models import Institution, Obligation, Referral
from referral.referrals import referral_public, visibility
from referral.schemas import ReferralPublic
from referral.states import DISCLOSED_STATUSES
from services.clock import as_utc
from services.errors import Unprocessable
from services.pages import after, page_key, split_page
from services.tokens import Principal
from services.vocabulary import ReferralStatus, UserRole

DEFAULT_PAGE = 200  # without ``limit``: the newest 200, as the list answered before cursors
MAX_WORDS = 8
FOLIO_PREFIX = "can-"  # referral.catalogue.folio: "CAN-" and the id's first eight characters
_ID_PART = re.compile(r"^[0-9a-f-]{4,36}$")
_KNOWN = tuple(s.value for s in ReferralStatus)


@dataclass(frozen=True)
class ReferralFilters:
    """What narrows the list; every field left empty narrows nothing."""

    statuses: frozenset[str] = frozenset()
    operation_id: str | None = None
    sending_institution_id: str | None = None
    receiving_institution_id: str | None = None
    words: tuple[str, ...] = ()
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive


def _statuses(values: Sequence[str]) -> frozenset[str]:
    """``status`` repeated, or comma-separated: one set; an unknown one is refused."""
    found = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = sorted(found.difference(_KNOWN))
    if unknown:
        raise Unprocessable(
            f"status: «{unknown[0][:40]}» no es un estado de canalización; use "
            f"{', '.join(_KNOWN)}.",
            code="invalid_status",
        )
    return frozenset(found)


def _moment(name: str, raw: str, *, end: bool) -> datetime:
    """A bound of the date range, in UTC: ``AAAA-MM-DD`` is the whole day (UTC), a date
    and time (ISO 8601, without offset: UTC) that instant; ``end`` makes it exclusive."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day, time(), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = as_utc(datetime.fromisoformat(raw))
        return moment + timedelta(microseconds=1) if end else moment
    except (ValueError, OverflowError) as exc:
        raise Unprocessable(
            f"{name}: use una fecha AAAA-MM-DD o una fecha y hora ISO 8601 "
            "(p. ej. 2026-03-01 o 2026-03-01T09:30:00-06:00).",
            code="invalid_date",
        ) from exc


def parse_filters(
    *,
    statuses: Sequence[str] = (),
    operation_id: str | None = None,
    sending_institution_id: str | None = None,
    receiving_institution_id: str | None = None,
    q: str | None = None,
    created_from: str | None = None,
    created_to: str | None = None,
) -> ReferralFilters:
    """The filters of a list request, checked: a bad one is a 422 before any row is read."""
    start = _moment("created_from", created_from, end=False) if created_from else None
    before = _moment("created_to", created_to, end=True) if created_to else None
    if start is not None and before is not None and start >= before:
        raise Unprocessable(
            "created_from es posterior a created_to; el rango de fechas queda vacío.",
            code="invalid_date_range",
        )
    words = tuple(dict.fromkeys((q or "").lower().split()))
    if len(words) > MAX_WORDS:
        raise Unprocessable(f"q: busque con {MAX_WORDS} palabras o menos.", code="invalid_search")
    return ReferralFilters(
        statuses=_statuses(statuses),
        operation_id=operation_id or None,
        sending_institution_id=sending_institution_id or None,
        receiving_institution_id=receiving_institution_id or None,
        words=words,
        created_from=start,
        created_before=before,
    )


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in_full(principal: Principal) -> ColumnElement[bool]:
    """The rows the caller sees in full (``referrals.visibility``), the only ones whose case
    file a search may look in: a receiver learns nothing from a search before acceptance."""
    inst = principal.institution_id
    if principal.has(UserRole.SERVICE):
        return true()
    if not inst or principal.has(UserRole.OBSERVER):
        return false()
    return or_(
        col(Referral.sending_institution_id) == inst,
        and_(
            col(Referral.receiving_institution_id) == inst,
            col(Referral.status).in_(sorted(DISCLOSED_STATUSES)),
        ),
    )


def _word_matches(principal: Principal, word: str) -> ColumnElement[bool]:
    """Where one word of the search may be: the folio (or the id), the prosecutor's case
    file (where the caller may read it), the reason of a decline, either institution's name."""
    pattern = _like(word)
    named = select(Institution.id).where(col(Institution.name).ilike(pattern, escape="\\"))
    places: list[ColumnElement[bool]] = [
        and_(col(Referral.case_reference).ilike(pattern, escape="\\"), _in_full(principal)),
        col(Referral.decline_reason).ilike(pattern, escape="\\"),
        col(Referral.sending_institution_id).in_(named),
        col(Referral.receiving_institution_id).in_(named),
    ]
    ident = word.removeprefix(FOLIO_PREFIX)
    if _ID_PART.match(ident):
        places.append(col(Referral.id).startswith(ident, autoescape=True))
    return or_(*places)


def _conditions(principal: Principal, filters: ReferralFilters) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if filters.statuses:
        found.append(col(Referral.status).in_(sorted(filters.statuses)))
    if filters.operation_id:
        found.append(col(Referral.operation_id) == filters.operation_id)
    if filters.sending_institution_id:
        found.append(col(Referral.sending_institution_id) == filters.sending_institution_id)
    if filters.receiving_institution_id:
        found.append(col(Referral.receiving_institution_id) == filters.receiving_institution_id)
    if filters.created_from is not None:
        found.append(col(Referral.created_at) >= filters.created_from)
    if filters.created_before is not None:
        found.append(col(Referral.created_at) < filters.created_before)
    if filters.words:
        found.append(and_(*(_word_matches(principal, w) for w in filters.words)))
    if not (principal.has(UserRole.SERVICE) or permissions.sees_all_deidentified(principal)):
        inst = principal.institution_id or ""
        obliged = select(Obligation.referral_id).where(Obligation.institution_id == inst)
        found.append(
            or_(
                col(Referral.sending_institution_id) == inst,
                col(Referral.receiving_institution_id) == inst,
                col(Referral.id).in_(obliged),
            )
        )
    return found


def list_referrals(
    session: Session,
    *,
    principal: Principal,
    filters: ReferralFilters,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[list[ReferralPublic], str | None]:
    """One page of the referrals the caller may see, newest first, each as she may see it;
    and the cursor of the next page (``None`` on the last)."""
    permissions.ensure_can_list_referrals(principal)
    size = limit or DEFAULT_PAGE
    order = (col(Referral.created_at), col(Referral.id))
    query = select(Referral).where(*_conditions(principal, filters))
    key = page_key(cursor, datetime, str)
    if key is not None:
        query = query.where(after(order, (as_utc(key[0]), key[1]), descending=True))
    query = query.order_by(order[0].desc(), order[1].desc()).limit(size + 1)
    rows, next_cursor = split_page(session.exec(query).all(), size, lambda r: (r.created_at, r.id))
    return [referral_public(session, r, level=visibility(session, principal, r)) for r in rows], (
        next_cursor
    )

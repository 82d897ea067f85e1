"""Institutions: registration, renaming (with the history of names) and lookups."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from referral import events, permissions
from referral.database import outbox
from referral.exceptions import InstitutionNotFound
from referral.models import Institution, InstitutionName
from referral.records import text_keyed_page
from referral.schemas import InstitutionCreate, InstitutionPublic, InstitutionUpdate
from services.clock import utcnow
from services.contracts import emit
from services.errors import Conflict, Unprocessable
from services.tokens import Principal
from services.vocabulary import InstitutionType

# Types whose institution is per entidad federativa: looked up in the referral's state.
STATE_TYPES = frozenset({InstitutionType.DIF_ESTATAL, InstitutionType.CEEAV})


def institution_public(session: Session, inst: Institution) -> InstitutionPublic:
    names = session.exec(
        select(InstitutionName)
        .where(InstitutionName.institution_id == inst.id)
        .order_by(col(InstitutionName.valid_from))
    ).all()
    return InstitutionPublic.of(inst, names)


def get_institution(session: Session, *, institution_id: str) -> Institution:
    inst = session.get(Institution, institution_id)
    if inst is None:
        raise InstitutionNotFound(f"No existe la institución {institution_id}.")
    return inst


def list_institutions(
    session: Session,
    *,
    type: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[list[Institution], str | None]:
    """Institutions by name (of one ``type``); with ``limit`` one page, and the next one's
    cursor (``None``: the last)."""
    query = select(Institution)
    if type:
        query = query.where(Institution.type == type)
    return text_keyed_page(
        session,
        query,
        (col(Institution.name), col(Institution.id)),
        key_of=lambda i: (i.name, i.id),
        limit=limit,
        cursor=cursor,
    )


def candidates(session: Session, *types: str) -> list[Institution]:
    """The institutions of ``types``, oldest first: what :func:`first_of` chooses from."""
    return list(
        session.exec(
            select(Institution)
            .where(col(Institution.type).in_(types))
            .order_by(col(Institution.created_at), col(Institution.id))
        ).all()
    )


def first_of(
    institutions: Sequence[Institution], *types: str, state: str | None = None
) -> str | None:
    """Among ``institutions`` (oldest first), the oldest of the first of ``types`` that has
    one (state-level types only in ``state``)."""
    for type_ in types:
        if type_ in STATE_TYPES and not state:
            continue
        for inst in institutions:
            if inst.type == type_ and (type_ not in STATE_TYPES or inst.state == state):
                return inst.id
    return None


def first_institution(session: Session, *types: str, state: str | None = None) -> str | None:
    """The oldest institution of the first of ``types`` that has one (state-level types
    only in ``state``)."""
    return first_of(candidates(session, *types), *types, state=state)


def add_institution(session: Session, inst: Institution, principal: Principal | None) -> None:
    """Store a new institution, open its history of names and announce it."""
    session.add(inst)
    session.flush()
    session.add(InstitutionName(institution_id=inst.id, name=inst.name, valid_from=inst.created_at))
    emit(
        outbox,
        session,
        events.institution_created(inst),
        aggregate_id=inst.id,
        version=1,
        principal=principal,
    )


def create_institution(
    session: Session, *, principal: Principal, data: InstitutionCreate
) -> Institution:
    """Register an institution (platform admin only); its first name opens its history."""
    permissions.ensure_can_create_institution(principal)
    if data.legal_form and data.type != InstitutionType.NGO.value:
        raise Unprocessable(
            "Solo las organizaciones civiles tienen figura jurídica (A.C. o I.A.P.).",
            code="legal_form_not_applicable",
        )
    if data.id and session.get(Institution, data.id) is not None:
        raise Conflict(f"Ya existe la institución {data.id}.", code="institution_exists")
    if data.parent_id:
        get_institution(session, institution_id=data.parent_id)
    inst = Institution(
        name=data.name,
        type=data.type,
        state=data.state,
        legal_form=data.legal_form,
        parent_id=data.parent_id,
        created_at=utcnow(),
    )
    if data.id:
        inst.id = data.id
    add_institution(session, inst, principal)
    session.flush()
    return inst


def update_institution(
    session: Session, *, principal: Principal, institution_id: str, data: InstitutionUpdate
) -> Institution:
    """Rename (closing the old name's validity) or amend an institution."""
    permissions.ensure_can_create_institution(principal)
    inst = get_institution(session, institution_id=institution_id)
    now = utcnow()
    if data.name and data.name != inst.name:
        current = session.exec(
            select(InstitutionName).where(
                InstitutionName.institution_id == inst.id, col(InstitutionName.valid_to).is_(None)
            )
        ).all()
        for row in current:
            row.valid_to = now
            session.add(row)
        session.add(InstitutionName(institution_id=inst.id, name=data.name, valid_from=now))
        inst.name = data.name
    if data.legal_form is not None:
        inst.legal_form = data.legal_form
    if data.parent_id is not None:
        get_institution(session, institution_id=data.parent_id)
        inst.parent_id = data.parent_id
    inst.version += 1
    session.add(inst)
    emit(
        outbox,
        session,
        events.institution_updated(inst),
        aggregate_id=inst.id,
        version=inst.version,
        principal=principal,
    )
    session.flush()
    return inst

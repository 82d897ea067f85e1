"""Institutions: registration, renaming (with the history of names) and lookups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from referral import events, permissions
from referral.database import outbox
from referral.exceptions import InstitutionNotFound
from referral.models import Institution, InstitutionName
from referral.records import text_keyed_page
from referral.schemas import (
    InstitutionCreate,
    InstitutionImportItem,
    InstitutionImportResult,
    InstitutionPublic,
    InstitutionUpdate,
)
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
    add_institutions(session, [inst], principal)


def add_institutions(
    session: Session, insts: Sequence[Institution], principal: Principal | None
) -> None:
    """Store new institutions (parents first), open each one's history of names and
    announce each, as :func:`add_institution` does one."""
    session.add_all(insts)
    session.flush()
    for inst in insts:
        session.add(
            InstitutionName(institution_id=inst.id, name=inst.name, valid_from=inst.created_at)
        )
        emit(
            outbox,
            session,
            events.institution_created(inst),
            aggregate_id=inst.id,
            version=1,
            principal=principal,
        )


def _new_institution(data: InstitutionCreate, created_at: datetime) -> Institution:
    """The row of an institution to register (its id, when given, kept)."""
    inst = Institution(
        name=data.name,
        type=data.type,
        state=data.state,
        legal_form=data.legal_form,
        parent_id=data.parent_id,
        created_at=created_at,
    )
    if data.id:
        inst.id = data.id
    return inst


def _legal_form_problem(data: InstitutionCreate) -> str | None:
    if data.legal_form and data.type != InstitutionType.NGO.value:
        return "Solo las organizaciones civiles tienen figura jurídica (A.C. o I.A.P.)."
    return None


def import_institutions(
    session: Session, *, principal: Principal, items: Sequence[InstitutionImportItem]
) -> InstitutionImportResult:
    """A batch of institutions with their ids, in the caller's transaction (service token
    only: a bulk load). Each is stored, named and announced as one created by hand; ids
    already stored are skipped (a re-run stores nothing). A batch with an institution whose
    parent is neither stored nor in the batch, or with a legal form where none applies, is
    refused whole."""
    permissions.ensure_can_import_reference(principal)
    batch: dict[str, InstitutionImportItem] = {}
    for item in items:
        batch.setdefault(item.id, item)  # a repeated id inside the batch counts once
    # one read: which of the batch's ids, and of the parents it names, are stored
    wanted = set(batch) | {i.parent_id for i in batch.values() if i.parent_id}
    known = set(session.exec(select(Institution.id).where(col(Institution.id).in_(wanted))).all())
    present = known & set(batch)
    new = [item for iid, item in batch.items() if iid not in present]
    problems: list[str] = []
    for item in new:
        if (legal := _legal_form_problem(item)) is not None:
            problems.append(f"{item.name}: {legal}")
        if item.parent_id and item.parent_id not in batch and item.parent_id not in known:
            problems.append(f"{item.name}: no existe la institución {item.parent_id}.")
    if problems:
        raise Unprocessable(
            "El lote no se importó: " + " ".join(problems[:5]), code="institutions_rejected"
        )
    now = utcnow()
    rows = {item.id: _new_institution(item, now) for item in new}
    # parents before the offices that name them (a parent stored earlier needs no turn)
    ordered: list[Institution] = []
    placed: set[str] = set()
    while len(ordered) < len(rows):
        ready = [
            inst
            for iid, inst in rows.items()
            if iid not in placed and (inst.parent_id not in rows or inst.parent_id in placed)
        ]
        if not ready:  # a cycle of parents inside the batch
            raise Unprocessable(
                "El lote no se importó: las instituciones se nombran como dependencia unas de "
                "otras en círculo.",
                code="institutions_rejected",
            )
        ordered.extend(ready)
        placed.update(inst.id for inst in ready)
    add_institutions(session, ordered, principal)
    return InstitutionImportResult(
        received=len(batch), created=len(ordered), already_present=len(present)
    )


def create_institution(
    session: Session, *, principal: Principal, data: InstitutionCreate
) -> Institution:
    """Register an institution (platform admin only); its first name opens its history."""
    permissions.ensure_can_create_institution(principal)
    if (legal := _legal_form_problem(data)) is not None:
        raise Unprocessable(legal, code="legal_form_not_applicable")
    if data.id and session.get(Institution, data.id) is not None:
        raise Conflict(f"Ya existe la institución {data.id}.", code="institution_exists")
    if data.parent_id:
        get_institution(session, institution_id=data.parent_id)
    inst = _new_institution(data, utcnow())
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

"""Pools (beds with one eligibility): adding, editing, confirming, and client ledger entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session

from capacity import permissions
from capacity.events import admission_recorded, emit_pool_changed, record
from capacity.exceptions import FacilityNotActive, IdempotencyKeyReused, StaleVersion
from capacity.ledger import POOL_TABLE, append_entry, apply, bump_revision, touch_pool
from capacity.lookups import entry_by_key, get_facility, get_pool
from capacity.models import LedgerEntry, Pool
from capacity.schemas import LedgerCreate, PoolCreate, PoolUpdate
from services.clock import utcnow
from services.errors import Unprocessable
from services.tokens import Principal
from services.vocabulary import FacilityStatus


def ensure_children_counted(
    *, accepts_children: bool, max_children: int, key: str | None = None
) -> None:
    """A pool that takes accompanying children says how many (the one place of this rule;
    ``key`` names the pool in a roster import)."""
    if not accepts_children or max_children >= 1:
        return
    detail = (
        f"El grupo de camas {key!r} recibe niñas y niños acompañantes: indique cuántos "
        "(max_children ≥ 1)."
        if key is not None
        else "Si el grupo de camas recibe niñas y niños acompañantes, indique cuántos "
        "(max_children ≥ 1)."
    )
    raise Unprocessable(detail, code="max_children_required")


def _check_children(pool: Pool) -> None:
    ensure_children_counted(accepts_children=pool.accepts_children, max_children=pool.max_children)


def create_pool(
    session: Session, *, principal: Principal, facility_id: str, data: PoolCreate
) -> Pool:
    """Add a pool; its initial beds enter the ledger as an adjustment."""
    facility = get_facility(session, facility_id)
    if facility.status == FacilityStatus.CLOSED:
        raise FacilityNotActive(
            "La instalación está cerrada; no se le pueden agregar camas.",
        )
    rev = bump_revision(session)
    now = utcnow()
    pool = Pool(
        **data.model_dump(exclude={"total"}),
        facility_id=facility.id,
        total=data.total,
        revision=rev,
        last_confirmed_at=now,
        created_at=now,
    )
    _check_children(pool)
    session.add(pool)
    session.flush()
    if data.total:
        append_entry(
            session,
            pool=pool,
            kind="adjust",
            beds=data.total,
            reason="alta del grupo de camas",
            actor=principal,
            hold_id=None,
        )
    emit_pool_changed(session, pool, facility, principal)
    return pool


def update_pool(
    session: Session,
    *,
    principal: Principal,
    pool_id: str,
    data: PoolUpdate,
    if_match: int | None,
) -> Pool:
    """Change eligibility (and the total, as an adjustment), honouring ``If-Match``."""
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_edit_pool(principal, facility.operator_institution_id)
    if if_match is not None and if_match != pool.version:
        raise StaleVersion(pool.version)
    changes = data.model_dump(exclude_unset=True)
    reason = changes.pop("reason", None)
    new_total = changes.pop("total", None)
    changes = {k: v for k, v in changes.items() if v is not None}
    low = changes.get("min_age", pool.min_age)
    high = changes.get("max_age", pool.max_age)
    if low > high:
        raise Unprocessable(
            f"La edad mínima ({low}) no puede ser mayor que la edad máxima ({high}).",
            code="age_range",
        )
    rev = bump_revision(session)
    expected = pool.version
    c = POOL_TABLE.c
    result = session.execute(
        update(POOL_TABLE)
        .where(c.id == pool.id, c.version == expected)
        .values(**changes, version=c.version + 1, revision=rev)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(pool)
        raise StaleVersion(pool.version)
    session.refresh(pool)
    _check_children(pool)
    if new_total is not None and new_total != pool.total:
        apply(
            session,
            pool=pool,
            kind="adjust",
            beds=new_total - pool.total,
            reason=reason or "cambio del total de camas",
            actor=principal,
            rev=rev,
            bump_version=False,
        )
    emit_pool_changed(session, pool, facility, principal)
    return pool


def confirm_pool(session: Session, *, principal: Principal, pool_id: str) -> Pool:
    """Record that the pool's counts were confirmed right now."""
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_confirm_pool(principal, facility.operator_institution_id)
    rev = bump_revision(session)
    touch_pool(session, pool, rev=rev, last_confirmed_at=utcnow())
    emit_pool_changed(session, pool, facility, principal)
    return pool


def _admitted(data: LedgerCreate) -> list[dict[str, Any]]:
    """Who a client admission admitted, one per bed; the minimal body records each as S.I."""
    if data.people is not None:
        return [p.model_dump() for p in data.people]
    return [{"sex": None, "age_band": None} for _ in range(data.beds)]


def record_entry(
    session: Session,
    *,
    principal: Principal,
    pool_id: str,
    data: LedgerCreate,
    idempotency_key: str | None = None,
) -> tuple[Pool, LedgerEntry, bool]:
    """A client ledger entry (admit, discharge, adjust, out/back in service).

    Returns ``(pool, entry, created_now)``: an entry written earlier under the same
    ``idempotency_key`` is answered again instead of changing the counts twice.
    """
    pool = get_pool(session, pool_id)
    facility = get_facility(session, pool.facility_id)
    permissions.ensure_write_ledger(principal, facility.operator_institution_id)
    # Taken first, so that retries with one key queue up and the later find the earlier.
    rev = bump_revision(session)
    if idempotency_key:
        earlier = entry_by_key(session, pool_id=pool.id, idempotency_key=idempotency_key)
        if earlier is not None:
            if (earlier.kind, earlier.beds) != (data.kind, data.beds):
                raise IdempotencyKeyReused(
                    "Esa clave de idempotencia ya se usó con otro movimiento; use una clave nueva."
                )
            session.refresh(pool)
            return pool, earlier, False
    if data.kind == "admit" and facility.status != FacilityStatus.ACTIVE:
        raise FacilityNotActive(
            f"La instalación está {FacilityStatus(facility.status).label}; "
            "no puede registrar ingresos."
        )
    admission = data.kind == "admit" and not data.opening_balance
    entry = apply(
        session,
        pool=pool,
        kind=data.kind,
        beds=data.beds,
        reason=data.reason,
        actor=principal,
        rev=rev,
        idempotency_key=idempotency_key,
        people=_admitted(data) if admission else None,
    )
    session.flush()
    if admission:
        record(
            session,
            admission_recorded(pool, facility, entry),
            aggregate_id=pool.id,
            version=pool.version,
            actor=principal,
        )
    emit_pool_changed(session, pool, facility, principal)
    return pool, entry, True

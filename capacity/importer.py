"""Bulk import of the roster: facilities in their final status, pools and initial occupancy.

What ``POST /facilities``, ``PATCH /facilities/{id}``, ``POST /facilities/{id}/pools`` and
``POST /pools/{id}/ledger`` would leave behind, written with set-based inserts, a batch per
transaction: the facility (address apart), one status change per lifecycle step, each pool
with its counts and the ledger entries whose replay gives those counts (``adjust`` for the
beds, ``admit`` for the occupied, ``out_of_service``). One capacity revision per batch, so
search reloads the new pools at once. One outbox event per batch,
``capacity.roster.imported``, carries every facility and every pool snapshot (built by the
same functions as ``capacity.facility.*`` and ``capacity.pool.changed``), so the audit
trail and its occupancy statistics see the same rows; live-feed clients see the new pools
on their next snapshot.

Idempotent: a facility already on the roster (same name and operator) is not written
again; its id (and its pools', by name) are returned for the caller's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from types import SimpleNamespace
from typing import Any, cast

from pydantic_core import PydanticUndefined
from sqlmodel import Session, SQLModel, col, select

from capacity import permissions
from capacity.database import SYSTEM_ACTOR
from capacity.events import record, roster_imported
from capacity.ledger import bump_revision
from capacity.models import Facility, FacilityLocation, FacilityStatusChange, LedgerEntry, Pool
from capacity.pools import ensure_children_counted
from capacity.schemas import FacilityImport, PoolImport, RosterImportResult
from services.clock import utcnow
from services.db import bulk_insert
from services.errors import Unprocessable
from services.ids import new_ids
from services.tokens import Principal
from services.vocabulary import FacilityStatus

REGISTERED_REASON = "alta en el padrón"
ACTIVE_REASON = "alta verificada (importación del padrón)"


def _path(status: str) -> list[str]:
    """The lifecycle steps to ``status``: a suspended or closed facility once operated."""
    registered, active = FacilityStatus.REGISTERED.value, FacilityStatus.ACTIVE.value
    if status == registered:
        return [registered]
    if status == active:
        return [registered, active]
    return [registered, active, status]


def _duplicate(key: str) -> Unprocessable:
    return Unprocessable(f"La clave {key!r} se repite en el lote.", code="duplicate_key")


@dataclass
class _Batch:
    """The caller's keys mapped to ids, and which facilities are new."""

    facility_ids: dict[str, str] = field(default_factory=dict)
    pool_ids: dict[str, str] = field(default_factory=dict)
    present: dict[str, FacilityImport] = field(default_factory=dict)
    new: list[tuple[str, FacilityImport]] = field(default_factory=list)

    def result(self, **counts: Any) -> RosterImportResult:
        return RosterImportResult(
            facilities=self.facility_ids,
            pools=self.pool_ids,
            already_present=len(self.present),
            **counts,
        )


@dataclass
class _Rows:
    """What one batch inserts, table by table, and the objects its event describes."""

    facilities: list[dict[str, Any]] = field(default_factory=list)
    locations: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    pools: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    described: list[Facility] = field(default_factory=list)
    described_pools: list[tuple[Pool, Facility]] = field(default_factory=list)


@cache
def _defaults(model: type[SQLModel]) -> dict[str, Callable[[], Any]]:
    """How ``model(**row)`` fills each field a row may leave out (asked once per model:
    pydantic inspects a default factory's signature on every call)."""
    out: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            out[name] = cast(Callable[[], Any], info.default_factory)
        elif info.default is not PydanticUndefined:
            out[name] = _constant(info.default)
    return out


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def _described(model: type[SQLModel], row: dict[str, Any]) -> Any:
    """The row as the event builders read a ``model`` object (its attributes, the model's
    defaults where the row has none), without building an ORM object (they were a third
    of a batch's time, for the event alone)."""
    view = SimpleNamespace(**row)
    for name, default in _defaults(model).items():
        if name not in row:
            setattr(view, name, default())
    return view


def _sort_out(session: Session, items: list[FacilityImport], ids: Iterator[str]) -> _Batch:
    """Which facilities are on the roster already (same name and operator), which are new."""
    operators = {i.facility.operator_institution_id for i in items}
    existing: dict[tuple[str, str], str] = {
        (name, op): fid
        for fid, name, op in session.execute(
            select(Facility.id, Facility.name, Facility.operator_institution_id).where(
                col(Facility.operator_institution_id).in_(operators)
            )
        ).all()
    }
    batch = _Batch()
    for item in items:
        identity = (item.facility.name, item.facility.operator_institution_id)
        found = existing.get(identity)
        if found is not None:
            batch.facility_ids[item.key] = found
            batch.present[found] = item
            continue
        if item.key in batch.facility_ids:
            raise _duplicate(item.key)
        fid = next(ids)
        batch.facility_ids[item.key] = fid
        existing[identity] = fid
        batch.new.append((fid, item))
    return batch


def _map_present_pools(session: Session, batch: _Batch) -> None:
    """Map the caller's pool keys to the pools already stored, by name."""
    if not batch.present:
        return
    names = {
        (fid, name): pid
        for pid, fid, name in session.execute(
            select(Pool.id, Pool.facility_id, Pool.name).where(
                col(Pool.facility_id).in_(list(batch.present))
            )
        ).all()
    }
    for fid, item in batch.present.items():
        for p in item.pools:
            if (fid, p.pool.name) in names:
                batch.pool_ids[p.key] = names[(fid, p.pool.name)]


def _check_pools(batch: _Batch) -> None:
    for _, item in batch.new:
        for p in item.pools:
            ensure_children_counted(
                accepts_children=p.pool.accepts_children,
                max_children=p.pool.max_children,
                key=p.key,
            )


def _facility_rows(
    rows: _Rows,
    fid: str,
    item: FacilityImport,
    *,
    now: datetime,
    actor: str,
    ids: Iterator[str],
) -> Facility:
    """The facility, its location and one status change per lifecycle step."""
    data = item.facility
    steps = _path(item.status)
    reason = item.status_reason or (
        ACTIVE_REASON if item.status == FacilityStatus.ACTIVE else REGISTERED_REASON
    )
    row = {
        **data.model_dump(exclude={"address", "latitude", "longitude", "status"}),
        "id": fid,
        "status": item.status,
        "status_changed_at": now,
        "status_reason": reason,
        "version": len(steps),
        "created_at": now,
    }
    rows.facilities.append(row)
    if data.address is not None or data.latitude is not None or data.longitude is not None:
        rows.locations.append(
            {
                "facility_id": fid,
                "address": data.address or "",
                "latitude": data.latitude,
                "longitude": data.longitude,
            }
        )
    for previous, status in zip([None, *steps], steps, strict=False):
        if status == FacilityStatus.REGISTERED:
            step_reason = REGISTERED_REASON
        else:
            step_reason = reason if status == item.status else ACTIVE_REASON
        rows.changes.append(
            {
                "id": next(ids),
                "facility_id": fid,
                "from_status": previous,
                "to_status": status,
                "reason": step_reason,
                "actor": actor,
                "at": now,
            }
        )
    facility: Facility = _described(Facility, row)
    rows.described.append(facility)
    return facility


def _pool_rows(
    rows: _Rows,
    facility: Facility,
    p: PoolImport,
    *,
    pid: str,
    rev: int,
    now: datetime,
    principal: Principal,
    actor: str,
) -> None:
    """The pool with its counts and the ledger entries whose replay gives them."""
    entries = [
        (kind, beds, why)
        for kind, beds, why in (
            ("admit", p.occupied, "ocupación inicial (importación del padrón)"),
            ("out_of_service", p.out_of_service, "fuera de servicio (importación)"),
        )
        if beds
    ]
    row = {
        **p.pool.model_dump(exclude={"total"}),
        "id": pid,
        "facility_id": facility.id,
        "total": p.pool.total,
        "occupied": p.occupied,
        "held": 0,
        "out_of_service": p.out_of_service,
        "version": 1 + len(entries),
        "revision": rev,
        "last_confirmed_at": now,
        "created_at": now,
    }
    rows.pools.append(row)
    base = {
        "pool_id": pid,
        "actor": actor,
        "institution_id": principal.institution_id,
        "hold_id": None,
        "at": now,
    }
    if p.pool.total:
        rows.ledger.append(
            {
                **base,
                "kind": "adjust",
                "beds": p.pool.total,
                "reason": "alta del grupo de camas",
                "pool_version": 1,
            }
        )
    for n, (kind, beds, why) in enumerate(entries, start=2):
        rows.ledger.append({**base, "kind": kind, "beds": beds, "reason": why, "pool_version": n})
    rows.described_pools.append((_described(Pool, row), facility))


def _insert(session: Session, rows: _Rows) -> None:
    for model, table_rows in (
        (Facility, rows.facilities),
        (FacilityLocation, rows.locations),
        (FacilityStatusChange, rows.changes),
        (Pool, rows.pools),
        (LedgerEntry, rows.ledger),
    ):
        bulk_insert(session, model.__table__, table_rows)  # type: ignore[union-attr]


def import_roster(
    session: Session, *, principal: Principal, items: list[FacilityImport]
) -> RosterImportResult:
    """Store one batch of the roster in the caller's transaction."""
    permissions.ensure_import_roster(principal)
    ids = new_ids()
    batch = _sort_out(session, items, ids)
    _map_present_pools(session, batch)
    if not batch.new:
        return batch.result(created_facilities=0, created_pools=0, ledger_entries=0, event_id=None)
    _check_pools(batch)
    now = utcnow()
    actor = principal.sub or SYSTEM_ACTOR
    rev = bump_revision(session)
    rows = _Rows()
    for fid, item in batch.new:
        facility = _facility_rows(rows, fid, item, now=now, actor=actor, ids=ids)
        for p in item.pools:
            if p.key in batch.pool_ids:
                raise _duplicate(p.key)
            pid = batch.pool_ids[p.key] = next(ids)
            _pool_rows(
                rows, facility, p, pid=pid, rev=rev, now=now, principal=principal, actor=actor
            )
    _insert(session, rows)
    event = record(
        session,
        roster_imported(rows.described, rows.described_pools),
        aggregate_id=min(fid for fid, _ in batch.new),
        version=rev,
        actor=principal,
    )
    return batch.result(
        created_facilities=len(batch.new),
        created_pools=len(rows.pools),
        ledger_entries=len(rows.ledger),
        event_id=event.id,
    )

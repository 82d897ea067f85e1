"""Bulk import of the roster: facilities in their final status, pools and initial occupancy.

What ``POST /facilities``, ``PATCH /facilities/{id}``, ``POST /facilities/{id}/pools`` and
``POST /pools/{id}/ledger`` would leave behind, written with set-based inserts, a batch per
transaction: the facility (address apart), one status change per lifecycle step, each pool
with its counts and the ledger entries whose replay gives those counts (``adjust`` for the
beds, ``admit`` for the occupied, ``out_of_service``). One capacity revision per batch, so
search reloads the new pools at once. One outbox event per batch,
``capacity.roster.imported``, carries every facility and every pool snapshot (the fields
of ``capacity.facility.*`` and ``capacity.pool.changed``), so the audit trail and its
occupancy statistics see the same rows; live-feed clients see the new pools on their next
snapshot.

Idempotent: a facility already on the roster (same name and operator) is not written
again; its id (and its pools', by name) are returned for the caller's keys.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from capacity import permissions
from capacity.database import outbox
from capacity.models import Facility, FacilityLocation, FacilityStatusChange, LedgerEntry, Pool
from capacity.schemas import FacilityImport, RosterImportResult
from capacity.service import SYSTEM_ACTOR, bump_revision
from services.clock import utcnow
from services.errors import Unprocessable
from services.ids import new_id
from services.tokens import Principal

EVENT_TYPE = "capacity.roster.imported"
REGISTERED_REASON = "alta en el padrón"
ACTIVE_REASON = "alta verificada (importación del padrón)"


def _path(status: str) -> list[str]:
    """The lifecycle steps to ``status``: a suspended or closed facility once operated."""
    if status == "registered":
        return ["registered"]
    if status == "active":
        return ["registered", "active"]
    return ["registered", "active", status]


def import_roster(
    session: Session, *, principal: Principal, items: list[FacilityImport]
) -> RosterImportResult:
    """Store one batch of the roster in the caller's transaction."""
    permissions.ensure_import_roster(principal)
    now = utcnow()
    actor = principal.sub or SYSTEM_ACTOR
    operators = {i.facility.operator_institution_id for i in items}
    existing: dict[tuple[str, str], str] = {
        (name, op): fid
        for fid, name, op in session.execute(
            select(Facility.id, Facility.name, Facility.operator_institution_id).where(
                col(Facility.operator_institution_id).in_(operators)
            )
        ).all()
    }
    facility_ids: dict[str, str] = {}
    pool_ids: dict[str, str] = {}
    present: dict[str, FacilityImport] = {}
    new: list[tuple[str, FacilityImport]] = []
    for item in items:
        found = existing.get((item.facility.name, item.facility.operator_institution_id))
        if found is not None:
            facility_ids[item.key] = found
            present[found] = item
            continue
        if item.key in facility_ids:
            raise Unprocessable(
                f"La clave {item.key!r} se repite en el lote.", code="duplicate_key"
            )
        fid = new_id()
        facility_ids[item.key] = fid
        existing[(item.facility.name, item.facility.operator_institution_id)] = fid
        new.append((fid, item))
    if present:  # map the caller's pool keys to the pools already stored, by name
        names = {
            (fid, name): pid
            for pid, fid, name in session.execute(
                select(Pool.id, Pool.facility_id, Pool.name).where(
                    col(Pool.facility_id).in_(list(present))
                )
            ).all()
        }
        for fid, item in present.items():
            for p in item.pools:
                if (fid, p.pool.name) in names:
                    pool_ids[p.key] = names[(fid, p.pool.name)]
    if not new:
        return RosterImportResult(
            facilities=facility_ids,
            pools=pool_ids,
            created_facilities=0,
            created_pools=0,
            ledger_entries=0,
            already_present=len(present),
            event_id=None,
        )
    for _, item in new:
        for p in item.pools:
            if p.pool.accepts_children and p.pool.max_children < 1:
                raise Unprocessable(
                    f"El grupo de camas {p.key!r} recibe niñas y niños acompañantes: indique "
                    "cuántos (max_children ≥ 1).",
                    code="max_children_required",
                )
    rev = bump_revision(session)
    facilities: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    pools: list[dict[str, Any]] = []
    ledger: list[dict[str, Any]] = []
    facility_events: list[dict[str, Any]] = []
    pool_events: list[dict[str, Any]] = []
    for fid, item in new:
        data = item.facility
        steps = _path(item.status)
        fields = data.model_dump(exclude={"address", "latitude", "longitude", "status"})
        reason = item.status_reason or (
            ACTIVE_REASON if item.status == "active" else REGISTERED_REASON
        )
        facilities.append(
            {
                **fields,
                "id": fid,
                "status": item.status,
                "status_changed_at": now,
                "status_reason": reason,
                "version": len(steps),
                "created_at": now,
            }
        )
        if data.address is not None or data.latitude is not None or data.longitude is not None:
            locations.append(
                {
                    "facility_id": fid,
                    "address": data.address or "",
                    "latitude": data.latitude,
                    "longitude": data.longitude,
                }
            )
        for previous, status in zip([None, *steps], steps, strict=False):
            step_reason = (
                REGISTERED_REASON
                if status == "registered"
                else reason
                if status == item.status
                else ACTIVE_REASON
            )
            changes.append(
                {
                    "id": new_id(),
                    "facility_id": fid,
                    "from_status": previous,
                    "to_status": status,
                    "reason": step_reason,
                    "actor": actor,
                    "at": now,
                }
            )
        facility_events.append(
            {
                "facility_id": fid,
                "name": data.name,
                "facility_name": data.name,  # the trail drops "name" keys (people's names)
                "kind": data.kind,
                "status": item.status,
                "operator_institution_id": data.operator_institution_id,
                "state": data.state,
                "municipality": data.municipality,
            }
        )
        for p in item.pools:
            if p.key in pool_ids:
                raise Unprocessable(
                    f"La clave {p.key!r} se repite en el lote.", code="duplicate_key"
                )
            pid = pool_ids[p.key] = new_id()
            entries = [
                (kind, beds, why)
                for kind, beds, why in (
                    ("admit", p.occupied, "ocupación inicial (importación del padrón)"),
                    ("out_of_service", p.out_of_service, "fuera de servicio (importación)"),
                )
                if beds
            ]
            version = 1 + len(entries)
            body = p.pool.model_dump(exclude={"total"})
            pools.append(
                {
                    **body,
                    "id": pid,
                    "facility_id": fid,
                    "total": p.pool.total,
                    "occupied": p.occupied,
                    "held": 0,
                    "out_of_service": p.out_of_service,
                    "version": version,
                    "revision": rev,
                    "last_confirmed_at": now,
                    "created_at": now,
                }
            )
            base = {
                "pool_id": pid,
                "actor": actor,
                "institution_id": principal.institution_id,
                "hold_id": None,
                "at": now,
            }
            if p.pool.total:
                ledger.append(
                    {
                        **base,
                        "kind": "adjust",
                        "beds": p.pool.total,
                        "reason": "alta del grupo de camas",
                        "pool_version": 1,
                    }
                )
            for n, (kind, beds, why) in enumerate(entries, start=2):
                ledger.append(
                    {**base, "kind": kind, "beds": beds, "reason": why, "pool_version": n}
                )
            pool_events.append(
                {
                    "pool_id": pid,
                    "facility_id": fid,
                    "facility_name": data.name,
                    "facility_kind": data.kind,
                    "facility_status": item.status,
                    "operator_institution_id": data.operator_institution_id,
                    "state": data.state,
                    "municipality": data.municipality,
                    "version": version,
                    "total": p.pool.total,
                    "occupied": p.occupied,
                    "held": 0,
                    "out_of_service": p.out_of_service,
                    "available": p.pool.total - p.occupied - p.out_of_service,
                    **{
                        k: body[k]
                        for k in (
                            "sexes",
                            "min_age",
                            "max_age",
                            "accepts_children",
                            "max_child_age",
                            "max_children",
                            "accepts_witnesses",
                            "accepts_indirect_victims",
                            "wheelchair_accessible",
                            "migrants",
                            "lgbtttiq",
                            "interpreter_languages",
                        )
                    },
                    "last_confirmed_at": now.isoformat(),
                }
            )
    for model, rows in (
        (Facility, facilities),
        (FacilityLocation, locations),
        (FacilityStatusChange, changes),
        (Pool, pools),
        (LedgerEntry, ledger),
    ):
        if rows:
            session.execute(insert(model.__table__), rows)  # type: ignore[union-attr]
    event = outbox.emit(
        session,
        type=EVENT_TYPE,
        aggregate_type="roster",
        aggregate_id=min(fid for fid, _ in new),
        version=rev,
        principal=principal,
        payload={"facilities": facility_events, "pools": pool_events},
        system_actor=SYSTEM_ACTOR,
    )
    return RosterImportResult(
        facilities=facility_ids,
        pools=pool_ids,
        created_facilities=len(new),
        created_pools=len(pools),
        ledger_entries=len(ledger),
        already_present=len(present),
        event_id=event.id,
    )

"""SEGOB's roster projection: capacity's facility events folded into roster tables.

Written in the same transaction that appends an event to the trail (``audit.service``) and
rebuilt from the trail alone (``rebuild``). It never holds an address: capacity's events
carry none and the trail keeps only what their contracts declare non-sensitive.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from audit.exceptions import FacilityNotOnRoster
from audit.models import AuditEntry, RosterFacility, RosterPool
from services.clock import parse_utc, utcnow
from services.vocabulary import RegistrationStatus

REGISTRATION_STATUSES = tuple(RegistrationStatus.values())
FACILITY_PREFIX = "capacity.facility."
POOL_EVENT = "capacity.pool.changed"
# One entry of capacity's bulk roster import: many facilities and pool snapshots at once.
ROSTER_IMPORTED = "capacity.roster.imported"


class _Rows:
    """The roster rows an entry folds into, found by primary key.

    One entry: ``session.get``. A bulk import: every row of the batch read up front with
    two ``IN`` queries and kept here with the new ones, so unfolding hundreds of facilities
    and pools costs neither a query nor a flush per item."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.facilities: dict[str, RosterFacility] | None = None
        self.pools: dict[str, RosterPool] | None = None

    def preload(self, facility_ids: set[str], pool_ids: set[str]) -> None:
        fac, pool = col(RosterFacility.facility_id), col(RosterPool.pool_id)
        self.facilities = {}
        self.pools = {}
        for chunk in _chunks(sorted(facility_ids)):
            for row in self.session.execute(select(RosterFacility).where(fac.in_(chunk))):
                self.facilities[row[0].facility_id] = row[0]
        for chunk in _chunks(sorted(pool_ids)):
            for row in self.session.execute(select(RosterPool).where(pool.in_(chunk))):
                self.pools[row[0].pool_id] = row[0]

    def facility(self, fid: str, at: datetime) -> RosterFacility:
        if self.facilities is None:
            found = self.session.get(RosterFacility, fid)
        else:
            found = self.facilities.get(fid)
        if found is None:
            found = RosterFacility(facility_id=fid, first_seen_at=at)
            self.session.add(found)
            if self.facilities is not None:
                self.facilities[fid] = found
        return found

    def pool(self, pid: str) -> RosterPool | None:
        if self.pools is None:
            return self.session.get(RosterPool, pid)
        return self.pools.get(pid)

    def add_pool(self, pool: RosterPool) -> None:
        self.session.add(pool)
        if self.pools is not None:
            self.pools[pool.pool_id] = pool


def _chunks(ids: list[str], size: int = 500) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def project(session: Session, body: dict[str, Any]) -> None:
    """Fold one trail entry (its canonical body) into the roster tables."""
    etype = str(body.get("type") or "")
    if etype == ROSTER_IMPORTED:
        _project_import(session, body)
        return
    _fold(_Rows(session), body)
    session.flush()


def _fold(rows: _Rows, body: dict[str, Any]) -> None:
    """Fold one facility or pool entry into the roster rows (no flush)."""
    etype = str(body.get("type") or "")
    if not (etype.startswith(FACILITY_PREFIX) or etype == POOL_EVENT):
        return
    p = body.get("payload") or {}
    at = parse_utc(body.get("occurred_at")) or utcnow()
    version = int(body.get("aggregate_version") or 0)
    if etype == POOL_EVENT:
        fid = str(p.get("facility_id") or "")
        pid = str(p.get("pool_id") or body.get("aggregate_id") or "")
        if not fid or not pid:
            return
        fac = rows.facility(fid, at)
        fac.name = fac.name or p.get("facility_name")
        fac.kind = fac.kind or p.get("facility_kind")
        fac.state = fac.state or p.get("state")
        fac.municipality = fac.municipality or p.get("municipality")
        fac.operator_institution_id = fac.operator_institution_id or p.get(
            "operator_institution_id"
        )
        fac.status = fac.status or p.get("facility_status")
        pool = rows.pool(pid)
        if pool is None:
            pool = RosterPool(pool_id=pid, facility_id=fid)
            rows.add_pool(pool)
        elif pool.version > version:
            return
        pool.version = version
        pool.total = int(p.get("total") or 0)
        pool.occupied = int(p.get("occupied") or 0)
        pool.last_confirmed_at = parse_utc(p.get("last_confirmed_at"))
        return
    fid = str(p.get("facility_id") or body.get("aggregate_id") or "")
    if not fid:
        return
    fac = rows.facility(fid, at)
    if fac.version > version:
        return
    fac.version = version
    # Entries written before the trail stripped by declaration lost ``name``: they carry the
    # facility's name as ``facility_name``.
    if p.get("name") or p.get("facility_name"):
        fac.name = p.get("name") or p.get("facility_name")
    for key, attr in (
        ("kind", "kind"),
        ("operator_institution_id", "operator_institution_id"),
        ("state", "state"),
        ("municipality", "municipality"),
        ("specialization", "specialization"),
    ):
        if p.get(key):
            setattr(fac, attr, p[key])
    if isinstance(p.get("services"), list):
        fac.services = [str(s) for s in p["services"]]
    if p.get("status") and (p["status"] != fac.status or fac.status_changed_at is None):
        fac.status = p["status"]
        fac.status_changed_at = at
    reg = p.get("registration_status")
    if reg in REGISTRATION_STATUSES and reg != fac.registration_status:
        fac.registration_status = reg
        fac.registration_changed_at = at


def _project_import(session: Session, body: dict[str, Any]) -> None:
    """Unfold a bulk roster import into the facility and pool entries it stands for."""
    payload = body.get("payload") or {}
    facilities = payload.get("facilities") or []
    pools = payload.get("pools") or []
    rows = _Rows(session)
    rows.preload(
        {str(f.get("facility_id")) for f in facilities}
        | {str(p.get("facility_id")) for p in pools},
        {str(p.get("pool_id")) for p in pools},
    )
    for f in facilities:
        facility = {**f, "name": f.get("name") or f.get("facility_name")}
        _fold(
            rows,
            {**body, "type": f"{FACILITY_PREFIX}imported", "payload": facility,
             "aggregate_id": f.get("facility_id"), "aggregate_version": 1},
        )  # fmt: skip
    for pool in pools:
        _fold(
            rows,
            {**body, "type": POOL_EVENT, "payload": pool, "aggregate_id": pool.get("pool_id"),
             "aggregate_version": pool.get("version") or 1},
        )  # fmt: skip
    session.flush()


def rebuild(session: Session) -> int:
    """Rebuild the projection from the trail; how many facilities it holds."""
    session.execute(delete(RosterPool))
    session.execute(delete(RosterFacility))
    session.flush()
    stmt = (
        select(col(AuditEntry.canonical))
        .where(
            col(AuditEntry.type).startswith(FACILITY_PREFIX, autoescape=True)
            | (col(AuditEntry.type) == POOL_EVENT)
            | (col(AuditEntry.type) == ROSTER_IMPORTED)
        )
        .order_by(col(AuditEntry.position))
    )
    for canonical in session.execute(stmt).scalars():
        project(session, json.loads(canonical))
    return len(list(session.execute(select(col(RosterFacility.facility_id))).scalars()))


def get_roster_facility(session: Session, facility_id: str) -> RosterFacility:
    fac = session.get(RosterFacility, facility_id)
    if fac is None:
        raise FacilityNotOnRoster()
    return fac

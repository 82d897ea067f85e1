"""SEGOB's roster projection: capacity's facility events folded into roster tables.

Written in the same transaction that appends an event to the trail (``audit.service``) and
rebuilt from the trail alone (``rebuild``). It never holds an address: capacity's events
carry none and the trail keeps only what their contracts declare non-sensitive.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from audit.exceptions import FacilityNotOnRoster
from audit.models import AuditEntry, RosterFacility, RosterPool, RosterStay
from audit.roster_state import PARTS, add_imported_stays, chunks, existing, refresh
from services.clock import as_utc, as_utc_or_none, parse_utc, utcnow
from services.vocabulary import RegistrationStatus

REGISTRATION_STATUSES = tuple(RegistrationStatus.values())
FACILITY_PREFIX = "capacity.facility."
POOL_EVENT = "capacity.pool.changed"
# One entry of capacity's bulk roster import: many facilities and pool snapshots at once.
ROSTER_IMPORTED = "capacity.roster.imported"
# Stays (ADR 0022): admissions, their end, extensions; and referral's bulk history import.
ADMITTED = "referral.referral.admit"
STAY_ENDED = frozenset({"referral.referral.discharge", "referral.referral.cancel"})
STAY_EXTENDED = "referral.stay.extended"
HISTORY_IMPORTED = "referral.history.imported"
STAY_EVENTS = frozenset({ADMITTED, STAY_EXTENDED, HISTORY_IMPORTED, *STAY_ENDED})

# What an entry leaves to recompute (``audit.roster_state.refresh``): parts per facility.
Refresh = dict[str, frozenset[str]]
STAYS = frozenset({"stays"})
POOLS = frozenset({"pools"})


def _project_stay(session: Session, etype: str, body: dict[str, Any]) -> Refresh:
    """Fold one referral event into the roster's stays (idempotent per referral); the
    facilities whose stays it changed."""
    p = body.get("payload") or {}
    if etype == HISTORY_IMPORTED:
        # An imported referral still admitted: its stay began no later than its creation day.
        admitted = {
            str(row.get("referral_id")): row
            for row in p.get("referrals") or []
            if row.get("status") == "admitted"
            and row.get("facility_id")
            and parse_utc(row.get("created_on")) is not None
        }
        _project_imported_stays(session, admitted)
        return {}  # folded into their facilities already: nothing left to recompute
    rid = str(p.get("referral_id") or body.get("aggregate_id") or "")
    stay = session.get(RosterStay, rid) if rid else None
    if etype == ADMITTED and stay is None and p.get("facility_id"):
        at = parse_utc(body.get("occurred_at")) or utcnow()
        session.add(RosterStay(referral_id=rid, facility_id=str(p["facility_id"]), admitted_at=at))
    elif etype in STAY_ENDED and stay is not None:
        stay.open = False
    elif etype == STAY_EXTENDED and stay is not None:
        stay.extended_days += int(p.get("days") or 0)
    fid = stay.facility_id if stay is not None else str(p.get("facility_id") or "")
    return {fid: STAYS} if fid else {}


def _project_imported_stays(session: Session, admitted: dict[str, dict[str, Any]]) -> None:
    """The stays of a bulk history import's admitted referrals, each counted once (a
    retried batch adds nothing), folded into their facilities without re-reading their
    other stays (``audit.roster_state.add_imported_stays``)."""
    known = existing(session, col(RosterStay.referral_id), admitted)
    add_imported_stays(
        session,
        {
            rid: (str(row["facility_id"]), parse_utc(row.get("created_on")) or utcnow())
            for rid, row in admitted.items()
            if rid not in known
        },
    )


REGISTRATION_REVIEWED = "capacity.facility.registration_reviewed"


class _Rows:
    """The roster rows an entry folds into, found by primary key.

    One entry: ``session.get``. A bulk import: every row of the batch read up front with
    two ``IN`` queries and kept here with the new ones, so unfolding hundreds of facilities
    and pools costs neither a query nor a flush per item."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.facilities: dict[str, RosterFacility] | None = None
        self.pools: dict[str, RosterPool] | None = None
        self.changed = False  # a row was added, or a kept pool column changed

    def preload(self, facility_ids: set[str], pool_ids: set[str]) -> None:
        fac, pool = col(RosterFacility.facility_id), col(RosterPool.pool_id)
        self.facilities = {}
        self.pools = {}
        for chunk in chunks(sorted(facility_ids)):
            for row in self.session.execute(select(RosterFacility).where(fac.in_(chunk))):
                self.facilities[row[0].facility_id] = row[0]
        for chunk in chunks(sorted(pool_ids)):
            for row in self.session.execute(select(RosterPool).where(pool.in_(chunk))):
                self.pools[row[0].pool_id] = row[0]

    def facility(self, fid: str, at: datetime) -> RosterFacility:
        if self.facilities is None:
            found = self.session.get(RosterFacility, fid)
        else:
            found = self.facilities.get(fid)
        if found is None:
            found = RosterFacility(
                facility_id=fid, first_seen_at=at, visit_since_on=as_utc(at).date()
            )
            self.session.add(found)
            self.changed = True
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


def project(session: Session, body: dict[str, Any]) -> None:
    """Fold one trail entry (its canonical body) into the roster tables, and refresh what
    the roster keeps of the facilities it touched (``audit.roster_state``)."""
    project_many(session, [body])


def project_many(session: Session, bodies: list[dict[str, Any]]) -> None:
    """Fold trail entries in order, then refresh once what the roster keeps of every
    facility they touched: a batch of entries costs one recomputation per facility, not
    one per entry (the kept columns are recomputed from the rows, not adjusted)."""
    pending: dict[str, set[str]] = {}
    # The rows read stay referenced until the refresh, which then finds them in the session
    # (its identity map holds clean rows only weakly).
    kept: list[_Rows] = []
    shared = _preloaded(session, bodies)
    if shared is not None:
        kept.append(shared)
    for body in bodies:
        for fid, parts in _fold_entry(session, body, kept, shared).items():
            pending.setdefault(fid, set()).update(parts)
    by_parts: dict[frozenset[str], list[str]] = {}
    for fid, wanted in pending.items():
        by_parts.setdefault(frozenset(wanted), []).append(fid)
    for parts, fids in by_parts.items():
        refresh(session, fids, parts)


def _preloaded(session: Session, bodies: list[dict[str, Any]]) -> _Rows | None:
    """The roster rows of every facility and pool these entries name, read with two ``IN``
    queries (not two reads per entry); None when a bulk import is among them (it reads and
    adds its own rows, which a read made before it would miss)."""
    types = [str(body.get("type") or "") for body in bodies]
    if ROSTER_IMPORTED in types:
        return None
    facilities: set[str] = set()
    pools: set[str] = set()
    for etype, body in zip(types, bodies, strict=True):
        p = body.get("payload") or {}
        if etype == POOL_EVENT:
            facilities.add(str(p.get("facility_id") or ""))
            pools.add(str(p.get("pool_id") or body.get("aggregate_id") or ""))
        elif etype.startswith(FACILITY_PREFIX):
            facilities.add(str(p.get("facility_id") or body.get("aggregate_id") or ""))
    facilities.discard("")
    pools.discard("")
    if not facilities:
        return None
    rows = _Rows(session)
    rows.preload(facilities, pools)
    return rows


def _fold_entry(
    session: Session, body: dict[str, Any], kept: list[_Rows], shared: _Rows | None
) -> Refresh:
    etype = str(body.get("type") or "")
    if etype == ROSTER_IMPORTED:
        rows = _Rows(session)
        kept.append(rows)
        return _project_import(rows, body)
    if etype in STAY_EVENTS:
        return _project_stay(session, etype, body)
    rows = shared or _Rows(session)
    rows.changed = False
    fid = _fold(rows, body)
    if not fid:
        return {}
    if etype != POOL_EVENT:
        # A facility event may change its maximum stay, or bring it onto the roster with
        # stays already known.
        return {fid: PARTS}
    # A pool changes only its facility's beds, and only when what the roster keeps of it
    # changed (a hold or its release moves beds the roster does not count).
    return {fid: POOLS} if rows.changed else {}


def _fold(rows: _Rows, body: dict[str, Any]) -> str | None:
    """Fold one facility or pool entry into the roster rows (no flush); the facility it
    touched."""
    etype = str(body.get("type") or "")
    if not (etype.startswith(FACILITY_PREFIX) or etype == POOL_EVENT):
        return None
    p = body.get("payload") or {}
    at = parse_utc(body.get("occurred_at")) or utcnow()
    version = int(body.get("aggregate_version") or 0)
    if etype == POOL_EVENT:
        fid = str(p.get("facility_id") or "")
        pid = str(p.get("pool_id") or body.get("aggregate_id") or "")
        if not fid or not pid:
            return None
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
            rows.changed = True
        elif pool.version > version:
            return fid
        kept = (int(p.get("total") or 0), int(p.get("occupied") or 0),
                parse_utc(p.get("last_confirmed_at")))  # fmt: skip
        before = (pool.total, pool.occupied, as_utc_or_none(pool.last_confirmed_at))
        if kept != before:
            rows.changed = True
        pool.version = version
        pool.total, pool.occupied, pool.last_confirmed_at = kept
        return fid
    fid = str(p.get("facility_id") or body.get("aggregate_id") or "")
    if not fid:
        return None
    fac = rows.facility(fid, at)
    if fac.version > version:
        return fid
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
    if "max_stay_days" in p:
        fac.max_stay_days = p["max_stay_days"]
    if p.get("status") and (p["status"] != fac.status or fac.status_changed_at is None):
        fac.status = p["status"]
        fac.status_changed_at = at
    reg = p.get("registration_status")
    if reg in REGISTRATION_STATUSES and reg != fac.registration_status:
        fac.registration_status = reg
        fac.registration_changed_at = at
    if etype == REGISTRATION_REVIEWED:
        # Registered with observations (ADR 0021): flagged until a review finds them met.
        fac.registration_pending = [str(i) for i in p.get("pending") or []]
        fac.registration_due_on = _date(p.get("due_on"))
        fac.pending_count = len(fac.registration_pending)
    return fid


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _project_import(rows: _Rows, body: dict[str, Any]) -> Refresh:
    """Unfold a bulk roster import into the facility and pool entries it stands for."""
    payload = body.get("payload") or {}
    facilities = payload.get("facilities") or []
    pools = payload.get("pools") or []
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
    return dict.fromkeys(rows.facilities or {}, PARTS)  # every facility the import touched


def rebuild(session: Session) -> int:
    """Rebuild the projection from the trail; how many facilities it holds."""
    session.execute(delete(RosterPool))
    session.execute(delete(RosterFacility))
    session.execute(delete(RosterStay))
    session.flush()
    stmt = (
        select(col(AuditEntry.canonical))
        .where(
            col(AuditEntry.type).startswith(FACILITY_PREFIX, autoescape=True)
            | (col(AuditEntry.type) == POOL_EVENT)
            | (col(AuditEntry.type) == ROSTER_IMPORTED)
            | col(AuditEntry.type).in_(STAY_EVENTS)
        )
        .order_by(col(AuditEntry.position))
    )
    for canonical in session.execute(stmt).scalars():
        project(session, json.loads(canonical))
    refresh(session, session.execute(select(col(RosterFacility.facility_id))).scalars())
    return len(list(session.execute(select(col(RosterFacility.facility_id))).scalars()))


def get_roster_facility(session: Session, facility_id: str) -> RosterFacility:
    fac = session.get(RosterFacility, facility_id)
    if fac is None:
        raise FacilityNotOnRoster()
    return fac

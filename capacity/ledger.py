"""The bottom of capacity's writes: the revision counter and the occupancy ledger.

Every change of a pool's counts is one compare-and-set ``UPDATE`` (the guard is in the
``WHERE``, so concurrent requests can never hand out more beds than exist) plus an
appended ledger entry, in the caller's transaction. Each such write first bumps the
capacity-wide revision (one row), which orders writers and lets the search read model
refresh only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from capacity.database import SYSTEM_ACTOR
from capacity.exceptions import CountsConflict
from capacity.models import CapacityRevision, LedgerEntry, Pool
from services.clock import utcnow
from services.errors import CanalizaError
from services.tokens import Principal

POOL_TABLE: Table = Pool.__table__  # type: ignore[attr-defined]
REVISION_TABLE: Table = CapacityRevision.__table__  # type: ignore[attr-defined]


# --- revision -------------------------------------------------------------------------


def bump_revision(session: Session) -> int:
    """Take the next capacity revision (and the row's lock, which orders writers)."""
    table = REVISION_TABLE
    result = session.execute(
        update(table).where(table.c.id == 1).values(revision=table.c.revision + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.execute(table.insert().values(id=1, revision=1))
    return int(session.execute(select(table.c.revision).where(table.c.id == 1)).scalar_one())


def current_revision(session_or_conn: Any) -> int:
    table = REVISION_TABLE
    value = session_or_conn.execute(select(table.c.revision).where(table.c.id == 1)).scalar()
    return int(value or 0)


def stamp_pools(session: Session, *, facility_id: str, rev: int) -> None:
    """Make the search read model reload a facility's pools (nothing else changes)."""
    session.execute(
        update(POOL_TABLE).where(POOL_TABLE.c.facility_id == facility_id).values(revision=rev)
    )


def touch_pool(session: Session, pool: Pool, *, rev: int, **values: Any) -> None:
    """A new version of ``pool`` (``values`` changed, counts untouched), refreshed."""
    c = POOL_TABLE.c
    session.execute(
        update(POOL_TABLE)
        .where(c.id == pool.id)
        .values(**values, version=c.version + 1, revision=rev)
    )
    session.refresh(pool)


# --- counts ---------------------------------------------------------------------------


def available_of(pool: Pool) -> int:
    """Beds free now: the total less occupied, held and out of service (never below 0)."""
    return max(pool.total - pool.occupied - pool.held - pool.out_of_service, 0)


# kind -> (column changes per bed, guard that must hold before the change)
EFFECTS: dict[str, tuple[dict[str, int], str]] = {
    "admit": ({"occupied": 1}, "available"),
    "discharge": ({"occupied": -1}, "occupied"),
    "hold": ({"held": 1}, "available"),
    "release": ({"held": -1}, "held"),
    "adjust": ({"total": 1}, "adjust"),
    "out_of_service": ({"out_of_service": 1}, "available"),
    "back_in_service": ({"out_of_service": -1}, "out_of_service"),
}

_REFUSALS = {
    "available": "No hay {beds} cama(s) disponible(s) en este grupo (disponibles: {available}).",
    "occupied": "No se pueden dar de baja {beds} cama(s): sólo hay {occupied} ocupada(s).",
    "held": "No hay {beds} cama(s) reservada(s) que liberar.",
    "out_of_service": "Sólo hay {out_of_service} cama(s) fuera de servicio; no se pueden "
    "reincorporar {beds}.",
    "adjust": "El total no puede quedar por debajo de las camas ocupadas, reservadas o fuera "
    "de servicio ({used}).",
}


@dataclass(frozen=True)
class Counts:
    total: int = 0
    occupied: int = 0
    held: int = 0
    out_of_service: int = 0

    @property
    def available(self) -> int:
        return self.total - self.occupied - self.held - self.out_of_service

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "occupied": self.occupied,
            "held": self.held,
            "out_of_service": self.out_of_service,
        }


def replay_ledger(entries: Iterable[tuple[str, int]]) -> Counts:
    """The counts that a sequence of ``(kind, beds)`` ledger entries produces from zero."""
    values = {"total": 0, "occupied": 0, "held": 0, "out_of_service": 0}
    for kind, beds in entries:
        for column, sign in EFFECTS[kind][0].items():
            values[column] += sign * beds
    return Counts(**values)


def ledger_counts(session: Session, *, pool_id: str) -> Counts:
    """Replay a pool's ledger."""
    rows = session.execute(
        select(col(LedgerEntry.kind), col(LedgerEntry.beds))
        .where(col(LedgerEntry.pool_id) == pool_id)
        .order_by(col(LedgerEntry.seq))
    ).all()
    return replay_ledger((kind, beds) for kind, beds in rows)


def ledger_mismatches(session: Session) -> list[dict[str, Any]]:
    """Pools whose counts differ from the replay of their ledger (should always be empty)."""
    entries: dict[str, list[tuple[str, int]]] = {}
    rows = session.execute(
        select(col(LedgerEntry.pool_id), col(LedgerEntry.kind), col(LedgerEntry.beds)).order_by(
            col(LedgerEntry.seq)
        )
    )
    for pool_id, kind, beds in rows:
        entries.setdefault(pool_id, []).append((kind, beds))
    out = []
    for pool in session.execute(select(Pool)).scalars():
        stored = Counts(pool.total, pool.occupied, pool.held, pool.out_of_service).as_dict()
        expected = replay_ledger(entries.get(pool.id, ())).as_dict()
        if stored != expected:
            out.append({"pool_id": pool.id, "stored": stored, "replayed": expected})
    return out


# --- writing --------------------------------------------------------------------------


_COUNTED = ("total", "occupied", "held", "out_of_service", "version", "revision")
"""The columns a guarded update may change, read back by its ``RETURNING``."""


def _cas(session: Session, *, pool: Pool, kind: str, beds: int, rev: int, bump: bool) -> bool:
    """One guarded UPDATE: applies the change only if the counts allow it. When it does,
    ``pool`` takes the row's new counts from the same statement (``RETURNING``: no second
    read of the row, under the write lock)."""
    effects, guard = EFFECTS[kind]
    c = POOL_TABLE.c
    values: dict[str, Any] = {column: c[column] + sign * beds for column, sign in effects.items()}
    values["revision"] = rev
    if bump:
        values["version"] = c.version + 1
    available = c.total - c.occupied - c.held - c.out_of_service
    condition = {
        "available": available >= beds,
        "occupied": c.occupied >= beds,
        "held": c.held >= beds,
        "out_of_service": c.out_of_service >= beds,
        "adjust": (available + beds >= 0) & (c.total + beds >= 0),
    }[guard]
    row = session.execute(
        update(POOL_TABLE)
        .where(c.id == pool.id, condition)
        .values(**values)
        .returning(*(c[name] for name in _COUNTED))
    ).one_or_none()
    if row is None:
        return False
    for name, value in zip(_COUNTED, row, strict=True):
        set_committed_value(pool, name, value)  # as loaded: the object stays clean
    return True


def append_entry(
    session: Session,
    *,
    pool: Pool,
    kind: str,
    beds: int,
    reason: str,
    actor: Principal | None,
    hold_id: str | None,
    idempotency_key: str | None = None,
    people: list[dict[str, Any]] | None = None,
) -> LedgerEntry:
    """Append one ledger entry at the pool's current version."""
    entry = LedgerEntry(
        pool_id=pool.id,
        kind=kind,
        beds=beds,
        reason=reason,
        actor=actor.sub if actor else SYSTEM_ACTOR,
        institution_id=actor.institution_id if actor else None,
        hold_id=hold_id,
        idempotency_key=idempotency_key,
        people=people,
        pool_version=pool.version,
        at=utcnow(),
    )
    session.add(entry)
    return entry


def apply(
    session: Session,
    *,
    pool: Pool,
    kind: str,
    beds: int,
    reason: str,
    actor: Principal | None,
    rev: int,
    hold_id: str | None = None,
    bump_version: bool = True,
    error: type[CanalizaError] = CountsConflict,
    idempotency_key: str | None = None,
    people: list[dict[str, Any]] | None = None,
) -> LedgerEntry:
    """Compare-and-set the counts, then append the entry (returned, not yet flushed);
    refuses what the counts can't take."""
    if not _cas(session, pool=pool, kind=kind, beds=beds, rev=rev, bump=bump_version):
        session.refresh(pool)
        guard = EFFECTS[kind][1]
        detail = _REFUSALS[guard].format(
            beds=abs(beds),
            available=available_of(pool),
            occupied=pool.occupied,
            out_of_service=pool.out_of_service,
            used=pool.occupied + pool.held + pool.out_of_service,
        )
        raise error(
            detail, extra={"pool_id": pool.id, "requested": beds, "available": available_of(pool)}
        )
    return append_entry(
        session,
        pool=pool,
        kind=kind,
        beds=beds,
        reason=reason,
        actor=actor,
        hold_id=hold_id,
        idempotency_key=idempotency_key,
        people=people,
    )

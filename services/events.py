"""Domain events and the transactional outbox.

A service writes its events into its own ``outbox`` table in the same transaction as
the change (:meth:`Outbox.add`); :class:`services.relay.OutboxRelay` publishes them to
the bus after commit. Events never carry victims' identities.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlmodel import Session

from services.clock import utcnow
from services.ids import new_id
from services.tokens import Principal


class Event(BaseModel):
    """One domain event. ``type`` is ``<service>.<aggregate>.<what>``."""

    id: str = Field(default_factory=new_id)  # time-ordered (services.ids)
    type: str
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int = 0
    occurred_at: datetime = Field(default_factory=utcnow)
    actor: str | None = None
    institution_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    # Position in the bus's stream, set on delivery (None before publishing).
    sequence: int | None = None

    @property
    def service(self) -> str:
        return self.type.split(".", 1)[0]

    @property
    def subject(self) -> str:
        """The bus subject: ``canaliza.<type>``."""
        return f"canaliza.{self.type}"

    def to_json(self) -> str:
        return self.model_dump_json(exclude={"sequence"})


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table of one service (add it to the service's metadata)."""
    return Table(
        "outbox",
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(80), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("body", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Index("ix_outbox_pending", "published_at", "seq"),
    )


class Outbox:
    """Writes and reads one service's outbox."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._insert = table.insert()  # one statement, its SQL compiled once

    def add(self, session: Session, event: Event, *, json_payload: bool = False) -> Event:
        """Record ``event`` in the session's transaction; it is published after commit.
        ``json_payload``: the payload is JSON data already (a contract's dump), not walked
        again (a bulk import's event lists thousands of rows)."""
        if json_payload:
            body = event.model_dump(mode="json", exclude={"sequence", "payload"})
            body["payload"] = event.payload  # its place: the last field but ``sequence``
        else:
            body = event.model_dump(mode="json", exclude={"sequence"})
        session.execute(
            self._insert,
            {
                "event_id": event.id,
                "type": event.type,
                "aggregate_id": event.aggregate_id,
                # JSON data as the bus carries it, encoded once (by the column)
                "body": body,
                "created_at": utcnow(),
            },
        )
        return event

    def emit(
        self,
        session: Session,
        *,
        type: str,
        aggregate_type: str,
        aggregate_id: str,
        version: int = 0,
        principal: Principal | None,
        payload: dict[str, Any],
        system_actor: str = "system",
    ) -> Event:
        """Record an event caused by ``principal`` (or by the service itself when None)."""
        return self.add(
            session,
            Event(
                type=type,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id,
                aggregate_version=version,
                actor=principal.sub if principal else system_actor,
                institution_id=principal.institution_id if principal else None,
                payload=payload,
            ),
        )

    def pending_after_skipping(
        self, conn: Connection, skip: set[int], limit: int = 200
    ) -> tuple[list[tuple[int, Event]], bool]:
        """Up to ``limit`` unpublished rows in order, leaving out the sequences in ``skip``
        (published, not yet marked: their bodies are not even read), and whether the outbox
        may hold more."""
        query = select(self.table.c.seq, self.table.c.body).where(
            self.table.c.published_at.is_(None)
        )
        if skip:
            query = query.where(self.table.c.seq.not_in(sorted(skip)))
        rows = conn.execute(query.order_by(self.table.c.seq).limit(limit)).all()
        return [(row.seq, Event.model_validate(row.body)) for row in rows], len(rows) == limit

    def pending(self, conn: Connection, limit: int = 200) -> list[tuple[int, Event]]:
        """Unpublished rows in order, up to ``limit``."""
        return self.pending_after_skipping(conn, set(), limit)[0]

    def mark_published(self, conn: Connection, seqs: list[int]) -> None:
        if seqs:
            conn.execute(
                update(self.table).where(self.table.c.seq.in_(seqs)).values(published_at=utcnow())
            )

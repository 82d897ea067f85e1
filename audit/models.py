"""Audit tables: the append-only hash-chained trail and signed checkpoints."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Index, Text, column, func
from sqlmodel import Field, SQLModel

from services.db import empty_list, make_registry
from services.ids import new_id

reg = make_registry()
metadata = reg.metadata


class AuditBase(SQLModel, registry=reg):
    pass


class AuditEntry(AuditBase, table=True):
    """One received event. ``canonical`` is what the hash covers; columns are for filtering."""

    __tablename__ = "audit_entry"
    position: int = Field(primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    type: str = Field(max_length=200, index=True)
    actor: str | None = Field(default=None, max_length=200, index=True)
    institution_id: str | None = Field(default=None, max_length=64, index=True)
    facility_id: str | None = Field(default=None, max_length=64, index=True)
    occurred_at: datetime = Field(index=True)
    canonical: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Checkpoint(AuditBase, table=True):
    """A signed statement: the chain's hash at ``position`` was ``hash``."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    position: int
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=200)
    created_at: datetime


# --- roster oversight (ADR 0010) -----------------------------------------------------------


class RosterFacility(AuditBase, table=True):
    """A facility as SEGOB's roster knows it: projected from capacity's events (no address)."""

    __tablename__ = "roster_facility"
    # The roster's order (state, name with S.I. first, id): a page reads its rows in order.
    __table_args__ = (
        Index(
            "ix_roster_facility_order",
            "state",
            func.coalesce(column("name"), ""),
            "facility_id",
        ),
    )
    facility_id: str = Field(primary_key=True, max_length=64)
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=32, index=True)
    operator_institution_id: str | None = Field(default=None, max_length=64, index=True)
    state: str | None = Field(default=None, max_length=2, index=True)
    municipality: str | None = Field(default=None, max_length=120)
    specialization: str | None = Field(default=None, max_length=16)
    services: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    status: str | None = Field(default=None, max_length=16, index=True)
    status_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    registration_status: str = Field(default="not_submitted", max_length=16, index=True)
    registration_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # Registered with observations: checklist items still to meet, and by when (ADR 0021).
    registration_pending: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    registration_due_on: date | None = None
    version: int = 0
    first_seen_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    max_stay_days: int | None = None
    # What a roster line needs of its pools, visits, actions and stays, kept current by
    # ``audit.roster_state.refresh`` whenever they change (ADR 0027). Time-based flags
    # keep the instant or day they fall due, compared with now when the roster is read.
    pending_count: int = 0
    pool_count: int = 0
    beds: int = 0
    occupied: int = 0
    capacity_confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    last_visit_on: date | None = None
    visit_since_on: date | None = None  # the last visit, or the day it entered the roster
    visits_done: int = 0
    next_visit_planned_for: date | None = None
    open_actions: int = 0
    action_due_on: date | None = None  # the earliest due date of an open follow-up action
    stay_over_first_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    stay_over_last_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class RosterStay(AuditBase, table=True):
    """A stay as the roster knows it (ADR 0022): when the referral was admitted, whether it
    is still open and the days its extensions added; folded from referral events."""

    __tablename__ = "roster_stay"
    __table_args__ = (Index("ix_roster_stay_facility_over", "facility_id", "over_at"),)
    referral_id: str = Field(primary_key=True, max_length=64)
    facility_id: str = Field(max_length=64, index=True)
    admitted_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    open: bool = True
    extended_days: int = 0
    # When the stay passes its maximum plus extensions (null: no maximum, or ended).
    over_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class RosterPool(AuditBase, table=True):
    """A pool's last known counts and confirmation (for the "not confirmed" flag)."""

    __tablename__ = "roster_pool"
    pool_id: str = Field(primary_key=True, max_length=64)
    facility_id: str = Field(max_length=64, index=True)
    total: int = 0
    occupied: int = 0
    version: int = 0
    last_confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


VISIT_STATUSES = ("planned", "done", "cancelled")


class Visit(AuditBase, table=True):
    """A SEGOB visit to a facility: planned (date, team), then done (date, team, findings)."""

    __tablename__ = "visit"
    __table_args__ = (
        CheckConstraint("status IN ('planned', 'done', 'cancelled')", name="status_allowed"),
        Index("ix_visit_facility_status", "facility_id", "status"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    facility_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    planned_for: date | None = None
    done_on: date | None = None
    team: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    findings: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    version: int = 1


class FollowUpAction(AuditBase, table=True):
    """Something a visit found that must be done by a date, and when it was."""

    __tablename__ = "follow_up_action"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    visit_id: str = Field(foreign_key="visit.id", max_length=36, index=True)
    facility_id: str = Field(max_length=64, index=True)
    description: str = Field(max_length=1000)
    due_on: date
    completed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    completed_by: str | None = Field(default=None, max_length=200)
    completion_note: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))

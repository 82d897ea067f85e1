"""Capacity tables: facilities (with their secret location apart), pools, ledger, holds.

Bed counts live on the pool row and change only together with an appended ledger entry;
CHECK constraints keep every count non-negative and ``available`` (total − occupied −
held − out of service) at or above zero even if code were wrong.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

from services.clock import utcnow
from services.db import empty_dict, empty_list, make_registry
from services.ids import new_id
from services.vocabulary import FacilityKind, FacilityStatus, HoldStatus, RegistrationStatus

reg = make_registry()
metadata = reg.metadata

# Kinds, lifecycle statuses, SEGOB's roster registration (apart from the lifecycle, ADR
# 0010) and hold statuses are the platform's vocabulary (services.vocabulary).
REGISTRATION_ACTIONS = ("submitted", "registered", "returned")
SPECIALIZATIONS = ("trafficking", "mixed")
SECURITY_LEVELS = ("standard", "high", "maximum")
LEDGER_KINDS = (
    "admit",
    "discharge",
    "hold",
    "release",
    "adjust",
    "out_of_service",
    "back_in_service",
)
STATE_CODES = tuple(f"{n:02d}" for n in range(1, 33))
OPERATION_STATUSES = ("active", "released")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class CapacityBase(SQLModel, registry=reg):
    pass


class Facility(CapacityBase, table=True):
    """A refuge, shelter or half-way house on the roster (never its address)."""

    __tablename__ = "facility"
    __table_args__ = (
        CheckConstraint(_in("kind", FacilityKind.values()), name="kind_allowed"),
        CheckConstraint(_in("status", FacilityStatus.values()), name="status_allowed"),
        CheckConstraint(
            _in("registration_status", RegistrationStatus.values()),
            name="registration_status_allowed",
        ),
        CheckConstraint(_in("specialization", SPECIALIZATIONS), name="specialization_allowed"),
        CheckConstraint(_in("security_level", SECURITY_LEVELS), name="security_level_allowed"),
        CheckConstraint(_in("state", STATE_CODES), name="state_code"),
        CheckConstraint("max_stay_days IS NULL OR max_stay_days > 0", name="max_stay_positive"),
        Index("ix_facility_state_status", "state", "status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    operator_institution_id: str = Field(max_length=36, index=True)
    state: str = Field(max_length=2)
    municipality: str = Field(max_length=120)
    specialization: str = Field(default="trafficking", max_length=16)
    services: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    security_level: str = Field(default="standard", max_length=16)
    max_stay_days: int | None = None
    status: str = Field(default="registered", max_length=16, index=True)
    status_changed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    status_reason: str | None = Field(default=None, max_length=500)
    registration_status: str = Field(
        default="not_submitted",
        sa_column=Column(String(16), nullable=False, server_default="not_submitted"),
    )
    registration_changed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    # Registered with observations (ADR 0021): the checklist items still to meet, and by when.
    registration_pending: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    registration_due_on: date | None = None
    # Specialised care by type of exploitation (sexual, labour, other) it offers.
    exploitation_types: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    version: int = 1
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class FacilityRegistrationStep(CapacityBase, table=True):
    """One step of a facility's registration: a submission or SEGOB's review of it."""

    __tablename__ = "facility_registration_step"
    __table_args__ = (
        CheckConstraint(_in("action", REGISTRATION_ACTIONS), name="action_allowed"),
        Index("ix_facility_registration_step_facility_at", "facility_id", "at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    facility_id: str = Field(foreign_key="facility.id", max_length=36)
    attempt: int
    action: str = Field(max_length=16)
    actor: str = Field(max_length=120)
    institution_id: str | None = Field(default=None, max_length=36)
    note: str | None = Field(default=None, max_length=2000)
    # Review only: [{"item": code, "met": bool, "note": str | None}] over the checklist.
    checklist: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    # Registered with observations: the date the missing items must be met by.
    due_on: date | None = None
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class FacilityLocation(CapacityBase, table=True):
    """The exact address of a facility, kept apart and shown only to those allowed."""

    __tablename__ = "facility_location"

    facility_id: str = Field(
        sa_column=Column(String(36), ForeignKey("facility.id"), primary_key=True)
    )
    address: str = Field(max_length=500)
    latitude: float | None = None
    # Set by the facility's own staff; disclosed with the address, to the sender after
    # acceptance: who receives the people and how they get in.
    contact: str | None = Field(default=None, max_length=300)
    arrival_instructions: str | None = Field(default=None, max_length=1000)
    longitude: float | None = None


class FacilityStatusChange(CapacityBase, table=True):
    """Each lifecycle change of a facility, with its date and reason."""

    __tablename__ = "facility_status_change"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    facility_id: str = Field(foreign_key="facility.id", max_length=36, index=True)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    reason: str = Field(max_length=500)
    actor: str = Field(max_length=120)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Pool(CapacityBase, table=True):
    """Beds with one eligibility; counts kept in step with the ledger."""

    __tablename__ = "pool"
    __table_args__ = (
        CheckConstraint("total >= 0", name="total_non_negative"),
        CheckConstraint("occupied >= 0", name="occupied_non_negative"),
        CheckConstraint("held >= 0", name="held_non_negative"),
        CheckConstraint("out_of_service >= 0", name="out_of_service_non_negative"),
        CheckConstraint(
            "total - occupied - held - out_of_service >= 0", name="available_non_negative"
        ),
        CheckConstraint("min_age >= 0 AND max_age <= 130", name="age_bounds"),
        CheckConstraint("min_age <= max_age", name="age_range"),
        CheckConstraint("max_child_age >= 0 AND max_child_age <= 17", name="child_age_bounds"),
        CheckConstraint("max_children >= 0", name="max_children_non_negative"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_pool_revision", "revision"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    facility_id: str = Field(foreign_key="facility.id", max_length=36, index=True)
    name: str = Field(max_length=120)
    sexes: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    min_age: int = 18
    max_age: int = 120
    accepts_children: bool = False
    max_child_age: int = 0
    max_children: int = 0
    accepts_witnesses: bool = False
    accepts_indirect_victims: bool = False
    wheelchair_accessible: bool = False
    migrants: bool = False
    lgbtttiq: bool = False
    interpreter_languages: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    # Needs-aware matching (issue 16): disability types supported besides the wheelchair
    # flag, pregnancy and addiction care, and the needs these beds are kept for.
    disability_support: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    pregnancy_care: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    addiction_care: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    reserved_for: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    total: int = 0
    occupied: int = 0
    held: int = 0
    out_of_service: int = 0
    version: int = 1
    # The capacity-wide revision of the last change (see ``ledger.bump_revision``).
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    last_confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class LedgerEntry(CapacityBase, table=True):
    """One append-only change of a pool's counts."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind_allowed"),
        CheckConstraint("beds <> 0", name="beds_non_zero"),
        Index("ix_ledger_entry_pool_seq", "pool_id", "seq"),
        # A retried write (a referral's discharge) names its key: one entry, ever.
        UniqueConstraint("pool_id", "idempotency_key"),
    )

    seq: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    pool_id: str = Field(foreign_key="pool.id", max_length=36)
    kind: str = Field(max_length=20)
    beds: int
    reason: str = Field(max_length=500)
    actor: str = Field(max_length=120)
    institution_id: str | None = Field(default=None, max_length=36)
    hold_id: str | None = Field(default=None, max_length=36)
    idempotency_key: str | None = Field(default=None, max_length=120)
    # Of a client ``admit``: who was admitted ({sex, age_band}, null = S.I.), one per bed.
    people: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    pool_version: int
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class CapacityRevision(CapacityBase, table=True):
    """A single counter bumped by every write that changes what search can see."""

    __tablename__ = "capacity_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


class Hold(CapacityBase, table=True):
    """Beds set aside for a referral for a while, in one facility."""

    __tablename__ = "hold"
    __table_args__ = (
        CheckConstraint(_in("status", HoldStatus.values()), name="status_allowed"),
        UniqueConstraint("created_by", "idempotency_key", name="uq_hold_idempotency"),
        Index("ix_hold_status_expires", "status", "expires_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    facility_id: str = Field(foreign_key="facility.id", max_length=36, index=True)
    status: str = Field(default="active", max_length=16)
    reference: str | None = Field(default=None, max_length=120)
    # The de-identified group the beds are for ({sex, age, role} each), so that the hold
    # can be resumed from any session of its institution.
    people: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_by: str = Field(max_length=120)
    institution_id: str | None = Field(default=None, max_length=36)
    idempotency_key: str | None = Field(default=None, max_length=120)
    request_hash: str | None = Field(default=None, max_length=64)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    ended_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    version: int = 1
    # The rescue operation that made it (its holds count against the operations' quota).
    operation_id: str | None = Field(default=None, max_length=36, index=True)
    # The referral that names this hold (told by the referral service's event): releasing
    # its operation leaves it to the referral.
    referral_id: str | None = Field(default=None, max_length=36)


class Operation(CapacityBase, table=True):
    """A rescue operation (operativo): its groups by category, never an identity, and the
    plan that became its holds."""

    __tablename__ = "operation"
    __table_args__ = (
        CheckConstraint(_in("status", OPERATION_STATUSES), name="status_allowed"),
        CheckConstraint(_in("state", STATE_CODES), name="state_code"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    state: str = Field(max_length=2, index=True)
    status: str = Field(default="active", max_length=16)
    created_by: str = Field(max_length=120)
    institution_id: str | None = Field(default=None, max_length=36, index=True)
    people: int
    # The day of the rescue (the operation's date), when given.
    operation_date: date | None = None
    groups: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    # {"assignments": [...], "unplaced": [...]} as answered when it was held.
    plan: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    released_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    version: int = 1


class HoldAllocation(CapacityBase, table=True):
    """The beds a hold keeps in one pool."""

    __tablename__ = "hold_allocation"
    __table_args__ = (CheckConstraint("beds > 0", name="beds_positive"),)

    hold_id: str = Field(foreign_key="hold.id", primary_key=True, max_length=36)
    pool_id: str = Field(foreign_key="pool.id", primary_key=True, max_length=36)
    beds: int


class UnmetRequest(CapacityBase, table=True):
    """A search nothing could answer: who (by category, never identity), where, why."""

    __tablename__ = "unmet_request"
    __table_args__ = (UniqueConstraint("institution_id", "intent_key"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    sex: str | None = Field(default=None, max_length=1)  # None: not recorded (S.I.)
    age_group: str = Field(max_length=16)
    state: str | None = Field(default=None, max_length=2, index=True)
    group_size: int
    people: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    code: str = Field(max_length=40)
    reason: str = Field(max_length=1000)
    # What was needed besides beds (accessibility, interpreter, security, specialisation).
    needs: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # One search intent of one institution counts once, however often the page re-runs it.
    institution_id: str | None = Field(default=None, max_length=36)
    intent_key: str | None = Field(default=None, max_length=64)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )

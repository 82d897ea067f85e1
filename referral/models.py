"""Tables of the referral service (its own registry and metadata)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.db import empty_dict, empty_list, make_registry
from services.ids import new_id, new_random_id

reg = make_registry()
metadata = reg.metadata


def _ts(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _json() -> Any:
    return Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))


class ReferralBase(SQLModel, registry=reg):
    pass


class Institution(ReferralBase, table=True):
    __tablename__ = "institution"
    __table_args__ = (
        CheckConstraint(
            "type IN ('fiscalia_federal','fiscalia_estatal','dif_nacional','dif_estatal',"
            "'dif_municipal','inm','ceav','ceeav','segob','cndh','sre','ngo')",
            name="type_known",
        ),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    type: str = Field(max_length=20, index=True)
    state: str = Field(max_length=2)
    legal_form: str | None = Field(default=None, max_length=10)
    parent_id: str | None = Field(default=None, foreign_key="institution.id", max_length=36)
    version: int = 1
    created_at: datetime = _ts()


class InstitutionName(ReferralBase, table=True):
    """Every name an institution has had (PGR → FGR), with its validity."""

    __tablename__ = "institution_name"
    id: int | None = Field(default=None, primary_key=True)
    institution_id: str = Field(foreign_key="institution.id", index=True, max_length=36)
    name: str = Field(max_length=200)
    valid_from: datetime = _ts()
    valid_to: datetime | None = _ts(nullable=True)


class Agreement(ReferralBase, table=True):
    __tablename__ = "agreement"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft','ready_for_signature','signed','expired','revoked')",
            name="status_known",
        ),
        CheckConstraint("valid_to >= valid_from", name="valid_range"),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(max_length=80, unique=True)
    title: str = Field(max_length=300)
    valid_from: date
    valid_to: date
    status: str = Field(default="draft", max_length=24)
    scope_sexes: list[str] = _json()
    scope_age_groups: list[str] = _json()
    scope_services: list[str] = _json()
    scope_states: list[str] = _json()
    document: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    document_sha256: str | None = Field(default=None, max_length=64)
    document_uploaded_at: datetime | None = _ts(nullable=True)
    signature_verified: bool | None = None
    signature_detail: str | None = Field(default=None, max_length=500)
    version: int = 1
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    signed_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
    revoke_reason: str | None = Field(default=None, max_length=500)


class AgreementParty(ReferralBase, table=True):
    __tablename__ = "agreement_party"
    agreement_id: str = Field(foreign_key="agreement.id", primary_key=True, max_length=36)
    institution_id: str = Field(
        foreign_key="institution.id", primary_key=True, index=True, max_length=36
    )
    signed_by: str | None = Field(default=None, max_length=200)
    signed_at: datetime | None = _ts(nullable=True)


class Referral(ReferralBase, table=True):
    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft','sent','accepted','declined','expired','in_transit',"
            "'admitted','discharged','cancelled')",
            name="status_known",
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_referral_status_due", "status", "response_due_at"),
        # The list's one order, newest first (referral.listing): keyset pages read it.
        Index("ix_referral_created_at_id", "created_at", "id"),
    )
    # random, not time-ordered: the folio is the id's first characters (services.ids)
    id: str = Field(default_factory=new_random_id, primary_key=True, max_length=36)
    sending_institution_id: str = Field(foreign_key="institution.id", index=True, max_length=36)
    receiving_institution_id: str = Field(foreign_key="institution.id", index=True, max_length=36)
    facility_id: str = Field(max_length=36)
    hold_id: str | None = Field(default=None, max_length=36)
    # The rescue operation (capacity's operativo) it comes from, if any.
    operation_id: str | None = Field(default=None, max_length=36, index=True)
    # The agreement the referral travels along: chosen by the sender at creation, or the
    # first binding one found when it is sent.
    agreement_id: str | None = Field(default=None, foreign_key="agreement.id", max_length=36)
    state: str | None = Field(default=None, max_length=2)
    urgency: str = Field(max_length=10)
    status: str = Field(default="draft", max_length=16)
    version: int = 1
    case_reference: str | None = Field(default=None, max_length=100)
    services: list[str] = _json()
    witness_protection: bool = False
    consent: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    allocations: list[dict[str, Any]] = _json()
    outcome: str | None = Field(default=None, max_length=30)
    # The country of an assisted return (ISO 3166-1 alpha-3), with ``outcome`` assisted_return.
    outcome_country: str | None = Field(default=None, max_length=3)
    decline_reason: str | None = Field(default=None, max_length=500)
    hold_release_pending: bool = False
    # How the victims came to the authorities' knowledge (vocabulary.DetectionSource);
    # None: not recorded (S.I.).
    detection_source: str | None = Field(default=None, max_length=30)
    # An urgent placement along no agreement (ADR 0021): the sender's written reasons.
    without_agreement: bool = False
    without_agreement_justification: str | None = Field(default=None, max_length=1000)
    # An onward transfer: the referral under which the people are admitted where they are.
    previous_referral_id: str | None = Field(
        default=None, foreign_key="referral.id", index=True, max_length=36
    )
    # An action whose capacity step runs outside this row's transaction (admit, discharge)
    # claims the referral first; no other action changes it until the claim is let go.
    pending_action: str | None = Field(default=None, max_length=16)
    pending_token: str | None = Field(default=None, max_length=36)
    pending_since: datetime | None = _ts(nullable=True)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    sent_at: datetime | None = _ts(nullable=True)
    response_due_at: datetime | None = _ts(nullable=True)
    # Told by whoever starts the transfer (``in_transit``): when the people should arrive.
    expected_arrival_at: datetime | None = _ts(nullable=True)
    # When both institutions were warned that the answer deadline was near (once).
    deadline_warned_at: datetime | None = _ts(nullable=True)


class ReferralPerson(ReferralBase, table=True):
    """A person of a referral: only non-identifying variables (CNDH minimum set)."""

    __tablename__ = "referral_person"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    position: int
    sex: str | None = Field(default=None, max_length=1)  # None: not recorded (S.I.)
    age: int | None = None
    role: str = Field(max_length=20)
    nationality: str | None = Field(default=None, max_length=3)  # None: not recorded (S.I.)
    pseudonym: str | None = Field(default=None, max_length=80)
    # The same person in the referral before this one (an onward transfer): one victim, one
    # path, counted once.
    previous_person_id: str | None = Field(
        default=None, foreign_key="referral_person.id", max_length=36
    )
    state_of_origin: str | None = Field(default=None, max_length=2)
    languages: list[str] = _json()
    # None: not asked (S.I.); []: asked, none applies.
    vulnerable_groups: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    offences: list[str] = _json()
    # Pseudonymous person key (ADR 0019): random, issued at the first referral and carried
    # by a re-referral of the same person, so statistics count people, not referrals.
    person_key: str | None = Field(default=None, max_length=32, index=True)


class PersonIdentity(ReferralBase, table=True):
    """Names, kept apart: they leave the service only to the receiver after acceptance."""

    __tablename__ = "person_identity"
    person_id: str = Field(foreign_key="referral_person.id", primary_key=True, max_length=36)
    full_name: str = Field(max_length=200)


class ConsentIdentity(ReferralBase, table=True):
    """Who gave a referral's informed consent: a person's name, kept with the names above.

    The referral's ``consent`` JSON only says ``given_by_recorded``; the name itself leaves
    the service like the people's names, through the audited identities disclosure."""

    __tablename__ = "consent_identity"
    referral_id: str = Field(foreign_key="referral.id", primary_key=True, max_length=36)
    given_by: str = Field(max_length=200)


class ReferralHistory(ReferralBase, table=True):
    __tablename__ = "referral_history"
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    action: str = Field(max_length=20)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    version: int
    actor: str = Field(max_length=200)
    institution_id: str | None = Field(default=None, max_length=36)
    reason: str | None = Field(default=None, max_length=500)
    at: datetime = _ts()


class Obligation(ReferralBase, table=True):
    __tablename__ = "obligation"
    __table_args__ = (UniqueConstraint("referral_id", "kind"),)
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    kind: str = Field(max_length=30)
    # Indexed: the referral list finds what an institution sees by its obligations.
    institution_id: str | None = Field(default=None, max_length=36, index=True)
    status: str = Field(default="pending", max_length=12)
    humanitarian_visa_status: str | None = Field(default=None, max_length=20)
    # The victim's folio in the national victims registry (RENAVI), when the CEAV/CEEAV gives it.
    renavi_folio: str | None = Field(default=None, max_length=40)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = _ts()
    fulfilled_at: datetime | None = _ts(nullable=True)
    fulfilled_by: str | None = Field(default=None, max_length=200)


class RefusedAttempt(ReferralBase, table=True):
    """A send refused for want of an agreement (SEGOB statistics)."""

    __tablename__ = "refused_attempt"
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    sending_institution_id: str = Field(max_length=36)
    receiving_institution_id: str = Field(max_length=36)
    missing: str = Field(max_length=40)
    detail: str = Field(max_length=500)
    actor: str = Field(max_length=200)
    at: datetime = _ts()


class Escalation(ReferralBase, table=True):
    __tablename__ = "escalation"
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    kind: str = Field(max_length=30)
    offer: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    at: datetime = _ts()


class IdempotencyRecord(ReferralBase, table=True):
    __tablename__ = "idempotency_record"
    actor: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    referral_id: str = Field(foreign_key="referral.id", max_length=36)
    created_at: datetime = _ts()


class MigrationRoute(ReferralBase, table=True):
    """A foreign person's migration route (ADR 0022): one per person, never with identity.

    The humanitarian visa number is a document of the person; it is shown beside the
    person's position and nationality only, never beside a name or pseudonym."""

    __tablename__ = "migration_route"
    __table_args__ = (
        CheckConstraint(
            "route IN ('humanitarian_regularisation','complementary_protection',"
            "'asylum','assisted_return')",
            name="route_known",
        ),
        CheckConstraint(
            "status IN ('requested','in_process','granted','denied','completed')",
            name="status_known",
        ),
        CheckConstraint(
            "migration_station_days IS NULL OR migration_station_days >= 0",
            name="station_days_not_negative",
        ),
    )
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    person_id: str = Field(foreign_key="referral_person.id", unique=True, max_length=36)
    # The INM office that attends it: the regional office of the referral's state, or the
    # national INM where no regional office is registered.
    institution_id: str | None = Field(default=None, max_length=36)
    route: str = Field(max_length=30)
    status: str = Field(max_length=12)
    started_on: date
    resolved_on: date | None = None
    humanitarian_visa_number: str | None = Field(default=None, max_length=40)
    consular_contact_consent: bool | None = None
    consular_contact_on: date | None = None
    migration_station_days: int | None = None
    return_country: str | None = Field(default=None, max_length=3)
    risk_assessment_on: date | None = None
    risk_assessment_summary: str | None = Field(default=None, max_length=1000)
    risk_assessment_by: str | None = Field(default=None, max_length=200)
    version: int = 1
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()


class StayExtension(ReferralBase, table=True):
    """Days added to a stay beyond the facility's maximum, with why and who approved."""

    __tablename__ = "stay_extension"
    __table_args__ = (
        CheckConstraint("days > 0", name="days_positive"),
        CheckConstraint(
            "reason IN ('risk','physical_instability','psychological_instability','other')",
            name="reason_known",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    days: int
    reason: str = Field(max_length=30)
    detail: str = Field(max_length=500)
    approved_by: str = Field(max_length=200)
    recorded_by: str = Field(max_length=200)
    at: datetime = _ts()


class FollowUp(ReferralBase, table=True):
    """A contact after discharge: planned for a day, then done with its result."""

    __tablename__ = "follow_up"
    __table_args__ = (
        CheckConstraint(
            "result IS NULL OR result IN ('stable','needs_support','not_reached','declined')",
            name="result_known",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    due_on: date
    done_on: date | None = None
    result: str | None = Field(default=None, max_length=20)
    note: str | None = Field(default=None, max_length=500)
    recorded_by: str = Field(max_length=200)
    at: datetime = _ts()


class ServiceProvided(ReferralBase, table=True):
    """A service given to one admitted person (counted in the monthly per-facility report)."""

    __tablename__ = "service_provided"
    __table_args__ = (
        CheckConstraint(
            "service IN ('legal','psychological','medical','education','job_training')",
            name="service_known",
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    referral_id: str = Field(foreign_key="referral.id", index=True, max_length=36)
    person_id: str = Field(foreign_key="referral_person.id", index=True, max_length=36)
    service: str = Field(max_length=20)
    provided_on: date
    recorded_by: str = Field(max_length=200)
    at: datetime = _ts()

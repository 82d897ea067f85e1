"""Request and response bodies of the referral service; the public views are built here
(``*.of(rows)``), from rows the topic modules have loaded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from referral import catalogue
from referral.models import (
    Agreement,
    AgreementParty,
    FollowUp,
    Institution,
    InstitutionName,
    MigrationRoute,
    Obligation,
    Referral,
    ReferralHistory,
    ReferralPerson,
    ServiceProvided,
    StayExtension,
)
from services import vocabulary
from services.bodies import RequestBody
from services.clock import UtcDateTime
from services.countries import normalise_nationality
from services.validation import SAFE_TEXT, StrictBool, StrictInt

Str200 = Annotated[str, Field(min_length=1, max_length=200), SAFE_TEXT]
Id = Annotated[str, Field(min_length=1, max_length=36)]
StateCode = Literal[
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30",
    "31", "32",
]  # fmt: skip
InstitutionType = Literal[
    "fiscalia_federal", "fiscalia_estatal", "dif_nacional", "dif_estatal", "dif_municipal",
    "inm", "ceav", "ceeav", "segob", "cndh", "sre", "ngo",
]  # fmt: skip
Sex = Literal["F", "M", "X"]
Role = Literal["victim", "indirect_victim", "witness", "accompanying_child"]
AgeGroup = Literal["minors", "adults"]
Service = Literal["legal", "medical", "mental_health", "social_work", "education", "interpreter"]
VulnerableGroup = Literal["indigenous", "lgbtttiq", "disability", "migrant_in_transit"]


def _offence(value: str) -> str:
    if value not in vocabulary.OFFENCES:
        raise PydanticCustomError(
            "offence_unknown",
            "«{value}» no es un delito de la Ley General (arts. 10 a 36); use un código como "
            "art10-III (trata con fines de explotación sexual) o art13 (explotación sexual).",
            {"value": value[:40]},
        )
    return value


# A General Law offence: art10-I … art10-XI (trafficking for a purpose) or art11 … art36.
Offence = Annotated[
    str,
    Field(min_length=4, max_length=10, json_schema_extra={"enum": list(vocabulary.OFFENCES)}),
    AfterValidator(_offence),
]
# Issued by the service at a person's first referral; sent back to re-refer the same person.
PersonKey = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Outcome = Annotated[
    Literal[
        "reintegrated_origin", "reintegrated_elsewhere", "transferred_onward", "left_voluntarily",
        "assisted_return", "other",
    ],
    # Old data said "repatriated": it reads as an assisted return (ADR 0022).
    BeforeValidator(lambda v: vocabulary.LEGACY_OUTCOMES.get(v, v) if isinstance(v, str) else v),
]  # fmt: skip
DetectionSource = Literal[
    "hotline", "anonymous_report", "victim_complaint", "witness_complaint", "ex_officio",
    "inspection", "operation", "self_presentation", "institution_referral", "other",
]  # fmt: skip


def _nationality(value: str | None) -> str | None:
    return None if value is None else normalise_nationality(value)


# ISO 3166-1 alpha-3 (alpha-2 accepted and normalised), XXA stateless, null not recorded.
Nationality = Annotated[
    Annotated[str, Field(min_length=2, max_length=3)] | None,
    AfterValidator(_nationality),
    Field(json_schema_extra={"examples": ["MEX", "HND", "MX", "XXA", None]}),
]


class Strict(RequestBody):
    model_config = ConfigDict(extra="forbid")


# --- institutions ---------------------------------------------------------------------------


class InstitutionCreate(Strict):
    id: Annotated[str, Field(min_length=36, max_length=36)] | None = None
    name: Str200
    type: InstitutionType
    state: StateCode
    legal_form: Literal["A.C.", "I.A.P."] | None = None
    parent_id: Id | None = None


class InstitutionImportItem(InstitutionCreate):
    """An institution of a bulk load: its id is given (what makes a re-run skip it)."""

    id: Annotated[str, Field(min_length=36, max_length=36)]


class InstitutionImport(Strict):
    """A batch of institutions (at most 1,000 per request); parents before or beside the
    regional offices that name them."""

    institutions: list[InstitutionImportItem] = Field(min_length=1, max_length=1_000)


class InstitutionImportResult(BaseModel):
    received: int
    created: int
    already_present: int


class InstitutionUpdate(Strict):
    name: Str200 | None = None
    legal_form: Literal["A.C.", "I.A.P."] | None = None
    parent_id: Id | None = None


class NameRecord(BaseModel):
    name: str
    valid_from: UtcDateTime
    valid_to: UtcDateTime | None

    @classmethod
    def of(cls, row: InstitutionName) -> NameRecord:
        return cls(name=row.name, valid_from=row.valid_from, valid_to=row.valid_to)


class InstitutionPublic(BaseModel):
    id: str
    name: str
    type: str
    type_label: str
    state: str
    legal_form: str | None
    parent_id: str | None
    version: int
    names: list[NameRecord]

    @classmethod
    def of(cls, inst: Institution, names: Sequence[InstitutionName]) -> InstitutionPublic:
        return cls(
            id=inst.id,
            name=inst.name,
            type=inst.type,
            type_label=vocabulary.InstitutionType(inst.type).label,
            state=inst.state,
            legal_form=inst.legal_form,
            parent_id=inst.parent_id,
            version=inst.version,
            names=[NameRecord.of(n) for n in names],
        )


# --- agreements -----------------------------------------------------------------------------


def _all_sexes() -> list[Sex]:
    return ["F", "M", "X"]


def _all_age_groups() -> list[AgeGroup]:
    return ["minors", "adults"]


class Populations(Strict):
    sexes: list[Sex] = Field(default_factory=_all_sexes, min_length=1, max_length=3)
    age_groups: list[AgeGroup] = Field(default_factory=_all_age_groups, min_length=1, max_length=2)


class AgreementCreate(Strict):
    number: Annotated[str, Field(min_length=1, max_length=80)]
    title: Annotated[str, Field(min_length=1, max_length=300), SAFE_TEXT]
    party_ids: list[Id] = Field(min_length=2, max_length=20)
    valid_from: date
    valid_to: date
    populations: Populations = Field(default_factory=Populations)
    services: list[Service] = Field(default_factory=list, max_length=10)
    states: list[StateCode] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _check(self) -> AgreementCreate:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to no puede ser anterior a valid_from")
        if len(set(self.party_ids)) != len(self.party_ids):
            raise ValueError("party_ids repite una institución")
        return self


class SignBody(Strict):
    institution_id: Id


class ReasonBody(Strict):
    reason: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None


class PartyPublic(BaseModel):
    institution_id: str
    signed: bool
    signed_by: str | None
    signed_at: UtcDateTime | None

    @classmethod
    def of(cls, party: AgreementParty) -> PartyPublic:
        return cls(
            institution_id=party.institution_id,
            signed=party.signed_at is not None,
            signed_by=party.signed_by,
            signed_at=party.signed_at,
        )


class AgreementPublic(BaseModel):
    id: str
    number: str
    title: str
    party_ids: list[str]
    parties: list[PartyPublic]
    valid_from: date
    valid_to: date
    populations: dict[str, list[str]]
    services: list[str]
    states: list[str]
    status: str
    status_label: str
    version: int
    signed_at: UtcDateTime | None
    document_sha256: str | None
    signature_verified: bool | None
    signature_detail: str | None

    @classmethod
    def of(
        cls, agreement: Agreement, parties: Sequence[AgreementParty], *, status: str
    ) -> AgreementPublic:
        """``status`` is the effective one (a signed agreement past its end is expired)."""
        return cls(
            id=agreement.id,
            number=agreement.number,
            title=agreement.title,
            party_ids=[p.institution_id for p in parties],
            parties=[PartyPublic.of(p) for p in parties],
            valid_from=agreement.valid_from,
            valid_to=agreement.valid_to,
            populations={"sexes": agreement.scope_sexes, "age_groups": agreement.scope_age_groups},
            services=agreement.scope_services,
            states=agreement.scope_states,
            status=status,
            status_label=catalogue.AGREEMENT_STATUSES[status],
            version=agreement.version,
            signed_at=agreement.signed_at,
            document_sha256=agreement.document_sha256,
            signature_verified=agreement.signature_verified,
            signature_detail=agreement.signature_detail,
        )


# --- referrals ------------------------------------------------------------------------------


class PersonIn(Strict):
    """A person of a referral; ``sex`` and ``nationality`` are stated, ``null`` if not recorded."""

    sex: Sex | None
    age: Annotated[StrictInt, Field(ge=0, le=120)] | None = None
    role: Role
    nationality: Nationality
    pseudonym: Annotated[str, Field(max_length=80), SAFE_TEXT] | None = None
    name: Annotated[str, Field(max_length=200), SAFE_TEXT] | None = None
    state_of_origin: StateCode | None = None
    languages: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=10
    )
    # null (the default): not asked (S.I.); []: asked, none applies.
    vulnerable_groups: list[VulnerableGroup] | None = Field(default=None, max_length=4)
    offences: list[Offence] = Field(default_factory=list, max_length=12)
    # The person's key from an earlier referral, when the same person is referred again.
    person_key: PersonKey | None = None

    @model_validator(mode="after")
    def _child_age_recorded(self) -> PersonIn:
        if self.role == "accompanying_child" and self.age is None:
            raise PydanticCustomError(
                "child_age_required",
                "age: la edad de una niña o niño acompañante es obligatoria (al menos una "
                "estimación): de ella depende que pueda quedarse con su madre o padre.",
            )
        return self


class ConsentIn(Strict):
    given: StrictBool
    given_by: Annotated[str, Field(max_length=200), SAFE_TEXT] | None = None
    given_at: datetime | None = None
    scope: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None
    legal_basis_for_minors: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None


def consent_record(consent: ConsentIn) -> dict[str, Any]:
    """The consent as the referral row keeps it: never the name of who gave it (that is
    identity, kept in ``ConsentIdentity``), only whether one was recorded."""
    return {
        "given": consent.given,
        "given_by_recorded": bool(consent.given_by),
        "given_at": consent.given_at.isoformat() if consent.given_at else None,
        "scope": consent.scope,
        "legal_basis_for_minors": consent.legal_basis_for_minors,
    }


def consent_view(stored: dict[str, Any]) -> dict[str, Any]:
    """The stored consent as a caller sees it: a name is never in it, whatever the row holds."""
    view = {k: v for k, v in stored.items() if k != "given_by"}
    view.setdefault("given_by_recorded", bool(stored.get("given_by")))
    return view


class ReferralCreate(Strict):
    sending_institution_id: Id
    receiving_institution_id: Id
    facility_id: Id
    hold_id: Id | None = None
    agreement_id: Id | None = None
    # Left out (or empty) only for an onward transfer: the people are then those of
    # ``previous_referral_id``.
    people: list[PersonIn] = Field(default_factory=list, max_length=30)
    consent: ConsentIn
    urgency: Literal["urgent", "normal"]
    state: StateCode | None = None
    case_reference: Annotated[str, Field(max_length=100), SAFE_TEXT] | None = None
    services: list[Service] = Field(default_factory=list, max_length=10)
    witness_protection: StrictBool = False
    # How the victims came to the authorities' knowledge; null: not recorded (S.I.).
    detection_source: DetectionSource | None = None
    # Urgent placement along no agreement (ADR 0021): urgent, with a written justification.
    without_agreement: StrictBool = False
    without_agreement_justification: Annotated[str, Field(max_length=1000), SAFE_TEXT] | None = None
    # An onward transfer: the admitted referral the people leave from (ADR 0021).
    previous_referral_id: Id | None = None

    @model_validator(mode="after")
    def _people_or_previous(self) -> ReferralCreate:
        if self.previous_referral_id is None and not self.people:
            raise PydanticCustomError(
                "people_required",
                "people: una canalización necesita al menos una persona.",
            )
        if self.previous_referral_id is not None and self.people:
            raise PydanticCustomError(
                "people_carried",
                "people: en una canalización a otro lugar las personas son las de la "
                "canalización anterior (previous_referral_id); no se indican de nuevo.",
            )
        return self

    # The rescue operation the referral comes from (optional; filled in from the hold when
    # the hold was made by an operation).
    operation_id: Id | None = None

    @field_validator("consent")
    @classmethod
    def _consent_given(cls, value: ConsentIn) -> ConsentIn:
        if not value.given:
            raise ValueError("la canalización requiere consentimiento informado")
        return value


class ActionBody(Strict):
    reason: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None
    outcome: Outcome | None = None
    # With outcome ``assisted_return``: the country returned to (ISO 3166-1 alpha-3).
    outcome_country: Nationality = None
    # ``in_transit`` only: when the people are expected at the facility (with its offset).
    expected_arrival_at: datetime | None = None

    @field_validator("expected_arrival_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise PydanticCustomError(
                "timezone_required",
                "expected_arrival_at necesita su zona horaria (p. ej. 2026-12-06T18:00:00-06:00).",
            )
        return value


class FulfilBody(Strict):
    note: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None
    humanitarian_visa_status: Literal["not_started", "requested", "granted", "denied"] | None = None
    # The RENAVI folio, when the CEAV/CEEAV gives it (ADR 0022).
    renavi_folio: Annotated[str, Field(min_length=1, max_length=40), SAFE_TEXT] | None = None


class PersonPublic(BaseModel):
    sex: str | None
    age: int | None = None
    age_group: str
    # The CNDH band (0-12, 13-17, 18-59, 60+, unknown): shown when the age itself is not,
    # so that a receiver deciding before acceptance knows a baby from an adult.
    age_band: str = "unknown"
    role: str
    nationality: str | None
    pseudonym: str | None = None
    state_of_origin: str | None = None
    languages: list[str] = Field(default_factory=list)
    vulnerable_groups: list[str] | None = None
    offences: list[str] = Field(default_factory=list)
    person_key: str | None = None

    @classmethod
    def of(cls, p: ReferralPerson, *, deidentified: bool) -> PersonPublic:
        return cls(
            sex=p.sex,
            age=None if deidentified else p.age,
            age_group=catalogue.age_group(p.age),
            age_band=vocabulary.cndh_age_band(p.age),
            role=p.role,
            nationality=p.nationality,
            pseudonym=None if deidentified else p.pseudonym,
            state_of_origin=None if deidentified else p.state_of_origin,
            languages=p.languages,
            vulnerable_groups=p.vulnerable_groups,
            offences=p.offences,
            person_key=None if deidentified else p.person_key,
        )


class ObligationPublic(BaseModel):
    id: str
    kind: str
    label: str
    institution_id: str | None
    status: str
    humanitarian_visa_status: str | None
    renavi_folio: str | None = None
    note: str | None
    fulfilled_at: UtcDateTime | None

    @classmethod
    def of(cls, o: Obligation) -> ObligationPublic:
        return cls(
            id=o.id,
            kind=o.kind,
            label=catalogue.OBLIGATIONS[o.kind],
            institution_id=o.institution_id,
            status=o.status,
            humanitarian_visa_status=o.humanitarian_visa_status,
            renavi_folio=o.renavi_folio,
            note=o.note,
            fulfilled_at=o.fulfilled_at,
        )


class HistoryPublic(BaseModel):
    action: str
    from_status: str | None
    to_status: str
    version: int
    actor: str
    institution_id: str | None
    reason: str | None
    at: UtcDateTime

    @classmethod
    def of(cls, h: ReferralHistory) -> HistoryPublic:
        return cls(
            action=h.action,
            from_status=h.from_status,
            to_status=h.to_status,
            version=h.version,
            actor=h.actor,
            institution_id=h.institution_id,
            reason=h.reason,
            at=h.at,
        )


class ReferralPublic(BaseModel):
    id: str
    # "CAN-" and the id's first eight characters, as on the oficio (catalogue.folio).
    folio: str = ""
    sending_institution_id: str
    receiving_institution_id: str
    facility_id: str
    hold_id: str | None
    agreement_id: str | None = None
    operation_id: str | None = None
    state: str | None
    urgency: str
    status: str
    status_label: str
    version: int
    deidentified: bool
    case_reference: str | None
    services: list[str]
    witness_protection: bool
    consent: dict[str, Any] | None
    people: list[PersonPublic]
    obligations: list[ObligationPublic]
    outcome: str | None
    outcome_country: str | None = None
    decline_reason: str | None
    sent_at: UtcDateTime | None
    response_due_at: UtcDateTime | None
    created_at: UtcDateTime
    history: list[HistoryPublic]
    detection_source: str | None = None
    detection_source_label: str = vocabulary.NO_INFORMATION
    without_agreement: bool = False
    without_agreement_justification: str | None = None
    previous_referral_id: str | None = None
    expected_arrival_at: UtcDateTime | None = None

    @classmethod
    def of(
        cls,
        referral: Referral,
        *,
        people: Sequence[ReferralPerson],
        obligations: Sequence[Obligation],
        history: Sequence[ReferralHistory],
        deidentified: bool,
    ) -> ReferralPublic:
        """The referral as one caller sees it: de-identified, no age, pseudonym, origin,
        case reference or consent."""
        deid = deidentified
        return cls(
            id=referral.id,
            folio=catalogue.folio(referral.id),
            sending_institution_id=referral.sending_institution_id,
            receiving_institution_id=referral.receiving_institution_id,
            facility_id=referral.facility_id,
            hold_id=referral.hold_id,
            agreement_id=referral.agreement_id,
            operation_id=referral.operation_id,
            state=referral.state,
            urgency=referral.urgency,
            status=referral.status,
            status_label=vocabulary.ReferralStatus(referral.status).label,
            version=referral.version,
            deidentified=deid,
            case_reference=None if deid else referral.case_reference,
            services=referral.services,
            witness_protection=referral.witness_protection,
            consent=None if deid else consent_view(referral.consent),
            people=[PersonPublic.of(p, deidentified=deid) for p in people],
            obligations=[ObligationPublic.of(o) for o in obligations],
            outcome=referral.outcome,
            outcome_country=referral.outcome_country,
            decline_reason=referral.decline_reason,
            sent_at=referral.sent_at,
            response_due_at=referral.response_due_at,
            created_at=referral.created_at,
            history=[HistoryPublic.of(h) for h in history],
            detection_source=referral.detection_source,
            detection_source_label=(
                vocabulary.DetectionSource(referral.detection_source).label
                if referral.detection_source
                else vocabulary.NO_INFORMATION
            ),
            without_agreement=referral.without_agreement,
            without_agreement_justification=referral.without_agreement_justification,
            previous_referral_id=referral.previous_referral_id,
            expected_arrival_at=referral.expected_arrival_at,
        )


class PathStep(BaseModel):
    """One referral of a person's path (an onward transfer continues the one before it):
    no people, no case reference, no address — where they were and when."""

    id: str
    previous_referral_id: str | None
    sending_institution_id: str
    receiving_institution_id: str
    facility_id: str
    status: str
    status_label: str
    without_agreement: bool
    created_at: UtcDateTime
    sent_at: UtcDateTime | None

    @classmethod
    def of(cls, referral: Referral) -> PathStep:
        return cls(
            id=referral.id,
            previous_referral_id=referral.previous_referral_id,
            sending_institution_id=referral.sending_institution_id,
            receiving_institution_id=referral.receiving_institution_id,
            facility_id=referral.facility_id,
            status=referral.status,
            status_label=vocabulary.ReferralStatus(referral.status).label,
            without_agreement=referral.without_agreement,
            created_at=referral.created_at,
            sent_at=referral.sent_at,
        )


class AgreementAlert(BaseModel):
    """Urgent placements along no agreement between the caller's institution and another:
    the two institutions' admins should formalise one (ADR 0021)."""

    other_institution_id: str
    other_institution_name: str
    sent_by_us: int
    received_by_us: int
    last_at: UtcDateTime
    referral_ids: list[str]


class IdentityPublic(BaseModel):
    """A name disclosed to the receiver: a person of the referral (``kind`` ``person``, with
    its position) or who gave the informed consent (``kind`` ``consent_given_by``)."""

    kind: Literal["person", "consent_given_by"] = "person"
    position: int | None
    pseudonym: str | None
    name: str | None


class OutcomeLine(BaseModel):
    sending_institution_id: str
    outcome: str
    label: str
    count: int


# --- historical import ----------------------------------------------------------------------

HistoricalStatus = Literal[
    "sent", "accepted", "declined", "expired", "admitted", "discharged", "cancelled"
]  # fmt: skip


class HistoricalPerson(Strict):
    """A person of a historical referral: the CNDH minimum variables, never a name."""

    sex: Sex | None
    age: Annotated[StrictInt, Field(ge=0, le=120)] | None = None
    role: Role
    nationality: Nationality
    pseudonym: Annotated[str, Field(max_length=80), SAFE_TEXT] | None = None
    state_of_origin: StateCode | None = None
    languages: list[Annotated[str, Field(max_length=40)]] = Field(
        default_factory=list, max_length=10
    )
    vulnerable_groups: list[VulnerableGroup] | None = Field(default=None, max_length=4)
    offences: list[Offence] = Field(default_factory=list, max_length=12)
    person_key: PersonKey | None = None


class HistoricalReferral(Strict):
    """One past referral in its final state, with the time of every step it took.

    ``answered_at`` is when the receiver accepted or declined. A referral still ``sent``
    whose answer deadline has passed is stored as expired (the service's own rule).
    """

    id: Annotated[str, Field(min_length=36, max_length=36)]
    sending_institution_id: Id
    receiving_institution_id: Id
    facility_id: Id
    agreement_number: Annotated[str, Field(max_length=80)] | None = None
    urgency: Literal["urgent", "normal"]
    state: StateCode | None = None
    people: list[HistoricalPerson] = Field(min_length=1, max_length=30)
    consent: ConsentIn
    status: HistoricalStatus
    outcome: Outcome | None = None
    reason: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None
    created_at: datetime
    sent_at: datetime
    answered_at: datetime | None = None
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None
    cancelled_at: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> HistoricalReferral:
        s = self.status
        answered = s in ("accepted", "declined", "admitted", "discharged")
        expect = {
            "answered_at": answered,
            "admitted_at": s in ("admitted", "discharged"),
            "discharged_at": s == "discharged",
            "cancelled_at": s == "cancelled",
            "outcome": s == "discharged",
        }
        for name, wanted in expect.items():
            if (getattr(self, name) is not None) != wanted:
                raise ValueError(
                    f"{name} {'falta' if wanted else 'sobra'} para una canalización «{s}»"
                )
        if s == "declined" and not (self.reason and self.reason.strip()):
            raise ValueError("una canalización rechazada necesita el motivo (reason)")
        if self.sending_institution_id == self.receiving_institution_id:
            raise ValueError("la remitente y la receptora deben ser distintas")
        steps = [
            t
            for t in (
                self.created_at,
                self.sent_at,
                self.answered_at,
                self.admitted_at,
                self.discharged_at,
            )
            if t is not None
        ]
        if any(t.tzinfo is None for t in steps) or (
            self.cancelled_at and self.cancelled_at.tzinfo is None
        ):
            raise ValueError("las fechas deben indicar su zona horaria (p. ej. «Z»)")
        if steps != sorted(steps) or (self.cancelled_at and self.cancelled_at < self.sent_at):
            raise ValueError("las fechas de la canalización no siguen el orden de sus pasos")
        return self


class HistoryImport(Strict):
    """A batch of historical referrals (at most 2,000 per request)."""

    referrals: list[HistoricalReferral] = Field(min_length=1, max_length=2_000)


class HistoryImportResult(BaseModel):
    received: int
    imported: int
    already_present: int
    expired: int
    event_id: str | None


# --- a foreign person's migration route (ADR 0022) -----------------------------------------

MigrationRouteCode = Literal[
    "humanitarian_regularisation", "complementary_protection", "asylum", "assisted_return"
]  # fmt: skip
MigrationRouteStatus = Literal["requested", "in_process", "granted", "denied", "completed"]


class RiskAssessmentIn(Strict):
    """The recorded assessment of the risk of revictimisation (a foreign minor's return)."""

    assessed_on: date
    summary: Annotated[str, Field(min_length=1, max_length=1000), SAFE_TEXT]


class MigrationRouteIn(Strict):
    """The route chosen for one foreign person, and where it stands."""

    route: MigrationRouteCode
    status: MigrationRouteStatus
    started_on: date
    resolved_on: date | None = None
    humanitarian_visa_number: Annotated[str, Field(min_length=1, max_length=40), SAFE_TEXT] | None = None  # fmt: skip
    consular_contact_consent: StrictBool | None = None
    consular_contact_on: date | None = None
    migration_station_days: Annotated[StrictInt, Field(ge=0, le=3650)] | None = None
    return_country: Nationality = None
    risk_assessment: RiskAssessmentIn | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> MigrationRouteIn:
        if self.resolved_on is not None and self.resolved_on < self.started_on:
            raise ValueError("resolved_on no puede ser anterior a started_on")
        return self


class MigrationRoutePublic(BaseModel):
    """One foreign person's route: by position and nationality, never with a name."""

    person_id: str
    position: int
    nationality: str | None
    age_group: str
    route: str | None
    route_label: str | None
    status: str | None
    status_label: str | None
    institution_id: str | None
    started_on: date | None = None
    resolved_on: date | None = None
    humanitarian_visa_number: str | None = None
    consular_contact_consent: bool | None = None
    consular_contact_on: date | None = None
    migration_station_days: int | None = None
    return_country: str | None = None
    risk_assessment_on: date | None = None
    risk_assessment_summary: str | None = None
    risk_assessment_required: bool
    version: int | None = None

    @classmethod
    def of(
        cls, person: ReferralPerson, route: MigrationRoute | None, *, documents: bool
    ) -> MigrationRoutePublic:
        minor = catalogue.age_group(person.age) == "minors"
        base = cls(
            person_id=person.id,
            position=person.position,
            nationality=person.nationality,
            age_group=catalogue.age_group(person.age),
            route=None,
            route_label=None,
            status=None,
            status_label=None,
            institution_id=None,
            risk_assessment_required=minor,
        )
        if route is None:
            return base
        return base.model_copy(
            update={
                "route": route.route,
                "route_label": catalogue.MIGRATION_ROUTES[route.route],
                "status": route.status,
                "status_label": catalogue.MIGRATION_ROUTE_STATUSES[route.status],
                "institution_id": route.institution_id,
                "started_on": route.started_on,
                "resolved_on": route.resolved_on,
                "humanitarian_visa_number": route.humanitarian_visa_number if documents else None,
                "consular_contact_consent": route.consular_contact_consent,
                "consular_contact_on": route.consular_contact_on,
                "migration_station_days": route.migration_station_days,
                "return_country": route.return_country,
                "risk_assessment_on": route.risk_assessment_on,
                "risk_assessment_summary": (route.risk_assessment_summary if documents else None),
                "version": route.version,
            }
        )


# --- stays, follow-up and services provided (ADR 0022) -------------------------------------

ExtensionReason = Literal["risk", "physical_instability", "psychological_instability", "other"]
FollowUpResult = Literal["stable", "needs_support", "not_reached", "declined"]
ServiceProvidedCode = Literal["legal", "psychological", "medical", "education", "job_training"]


class ExtensionIn(Strict):
    days: Annotated[StrictInt, Field(ge=1, le=365)]
    reason: ExtensionReason | None = None
    detail: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None
    approved_by: Annotated[str, Field(max_length=200), SAFE_TEXT] | None = None


class ExtensionPublic(BaseModel):
    days: int
    reason: str
    reason_label: str
    detail: str
    approved_by: str
    recorded_by: str
    at: UtcDateTime

    @classmethod
    def of(cls, e: StayExtension) -> ExtensionPublic:
        return cls(
            days=e.days,
            reason=e.reason,
            reason_label=catalogue.EXTENSION_REASONS[e.reason],
            detail=e.detail,
            approved_by=e.approved_by,
            recorded_by=e.recorded_by,
            at=e.at,
        )


class FollowUpPlan(Strict):
    due_on: date


class FollowUpResultIn(Strict):
    done_on: date
    result: FollowUpResult
    note: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None


class FollowUpPublic(BaseModel):
    id: int
    due_on: date
    done_on: date | None
    result: str | None
    result_label: str | None
    note: str | None
    overdue: bool

    @classmethod
    def of(cls, f: FollowUp, today: date) -> FollowUpPublic:
        assert f.id is not None
        return cls(
            id=f.id,
            due_on=f.due_on,
            done_on=f.done_on,
            result=f.result,
            result_label=catalogue.FOLLOW_UP_RESULTS[f.result] if f.result else None,
            note=f.note,
            overdue=f.done_on is None and f.due_on < today,
        )


class ServiceProvidedIn(Strict):
    person_id: Id
    service: ServiceProvidedCode
    provided_on: date


class ServiceProvidedPublic(BaseModel):
    person_id: str
    position: int
    service: str
    service_label: str
    provided_on: date

    @classmethod
    def of(cls, s: ServiceProvided, position: int) -> ServiceProvidedPublic:
        return cls(
            person_id=s.person_id,
            position=position,
            service=s.service,
            service_label=catalogue.SERVICES_PROVIDED[s.service],
            provided_on=s.provided_on,
        )


class StayPerson(BaseModel):
    """A person of the stay, by position (services are recorded per person)."""

    person_id: str
    position: int
    role: str


class StayPublic(BaseModel):
    """A referral's stay: days since admission against the facility's maximum (plus the
    extensions), the alert, and its follow-ups and services."""

    referral_id: str
    status: str
    admitted_at: UtcDateTime | None
    discharged_at: UtcDateTime | None
    days: int | None
    max_stay_days: int | None
    extended_days: int
    limit_days: int | None
    days_left: int | None
    alert: Literal["none", "approaching", "reached", "exceeded"]
    alert_label: str
    people: list[StayPerson]
    extensions: list[ExtensionPublic]
    follow_ups: list[FollowUpPublic]
    services: list[ServiceProvidedPublic]

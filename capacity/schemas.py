"""Request and answer bodies of the capacity API (unknown fields refused, strings bounded)."""

from __future__ import annotations

import datetime
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from capacity.languages import code_of
from capacity.ledger import available_of
from capacity.models import (
    SECURITY_LEVELS,
    SPECIALIZATIONS,
    STATE_CODES,
    Facility,
    FacilityLocation,
    Hold,
    HoldAllocation,
    Pool,
)
from services import vocabulary
from services.bodies import RequestBody
from services.clock import UtcDateTime, as_utc, as_utc_or_none
from services.validation import SAFE_TEXT, StrictBool, StrictFloat, StrictInt

SERVICES_OFFERED = (
    "legal",
    "medical",
    "mental_health",
    "social_work",
    "education",
    "interpretation",
    "employment",
    "childcare",
)
FACILITY_KINDS = vocabulary.FacilityKind.values()
FACILITY_STATUSES = vocabulary.FacilityStatus.values()
SEXES = vocabulary.Sex.values()
PERSON_ROLES = vocabulary.PersonRole.values()
ADMISSION_AGE_BANDS = tuple(b for b in vocabulary.CNDH_AGE_BANDS if b != "unknown")
CLIENT_LEDGER_KINDS = ("admit", "discharge", "adjust", "out_of_service", "back_in_service")
MAX_BEDS = 10_000


def _one_of(values: tuple[str, ...], what: str, extra: str = "") -> Any:
    def check(value: str) -> str:
        if value not in values:
            raise PydanticCustomError(
                "value_not_allowed",
                '"{value}" no es {what} admitido; use uno de: {allowed}.{extra}',
                {"value": value, "what": what, "allowed": ", ".join(values), "extra": extra},
            )
        return value

    return AfterValidator(check)


Kind = Annotated[
    str,
    Field(max_length=40, json_schema_extra={"enum": list(FACILITY_KINDS)}),
    _one_of(
        FACILITY_KINDS,
        "un tipo de instalación",
        " Ningún lugar de detención (prisión, centro preventivo, estación migratoria) "
        "puede registrarse como alojamiento.",
    ),
]
StateCode = Annotated[
    str,
    Field(max_length=2, json_schema_extra={"enum": list(STATE_CODES)}),
    _one_of(STATE_CODES, "una clave INEGI de entidad federativa", ' Ejemplo: "09".'),
]
Status = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(FACILITY_STATUSES)}),
    _one_of(FACILITY_STATUSES, "un estado de instalación"),
]
Specialization = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(SPECIALIZATIONS)}),
    _one_of(SPECIALIZATIONS, "un tipo de población"),
]
SecurityLevel = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(SECURITY_LEVELS)}),
    _one_of(SECURITY_LEVELS, "un nivel de seguridad"),
]
ServiceOffered = Annotated[
    str,
    Field(max_length=32, json_schema_extra={"enum": list(SERVICES_OFFERED)}),
    _one_of(SERVICES_OFFERED, "un servicio reconocido"),
]
Sex = Annotated[
    str, Field(max_length=1, json_schema_extra={"enum": list(SEXES)}), _one_of(SEXES, "un sexo")
]
PersonRole = Annotated[
    str,
    Field(max_length=24, json_schema_extra={"enum": list(PERSON_ROLES)}),
    _one_of(PERSON_ROLES, "un papel"),
]
LedgerKind = Annotated[
    str,
    Field(max_length=20, json_schema_extra={"enum": list(CLIENT_LEDGER_KINDS)}),
    _one_of(
        CLIENT_LEDGER_KINDS,
        "un movimiento",
        " Las reservas y liberaciones las registran las reservas (holds).",
    ),
]


def _known_language(value: str) -> str:
    if code_of(value) is None:
        raise PydanticCustomError(
            "language_unknown",
            '"{value}" no es una lengua del catálogo (español, lenguas indígenas del INALI, '
            "Lengua de Señas Mexicana y lenguas extranjeras); consulte "
            "GET /api/v1/languages.",
            {"value": value},
        )
    return value


Language = Annotated[str, Field(min_length=2, max_length=40), AfterValidator(_known_language)]
DISABILITIES = ("mobility", "sensory", "intellectual_psychosocial")
EXPLOITATION_TYPES = ("sexual", "labour", "other")
RESERVABLE_NEEDS = ("disability", "pregnancy", "addiction_care")
STAGES = ("immediate", "leaving_refuge")
Disability = Annotated[
    str,
    Field(max_length=32, json_schema_extra={"enum": list(DISABILITIES)}),
    _one_of(DISABILITIES, "un tipo de discapacidad"),
]
Exploitation = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(EXPLOITATION_TYPES)}),
    _one_of(EXPLOITATION_TYPES, "un tipo de explotación"),
]
ReservableNeed = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(RESERVABLE_NEEDS)}),
    _one_of(RESERVABLE_NEEDS, "una necesidad para la que se reservan camas"),
]
Stage = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"enum": list(STAGES)}),
    _one_of(STAGES, "una etapa de atención"),
]
Text200 = Annotated[str, Field(min_length=1, max_length=200), SAFE_TEXT]
Reason = Annotated[str, Field(min_length=3, max_length=500), SAFE_TEXT]
Id = Annotated[str, Field(min_length=1, max_length=36)]
Age = Annotated[StrictInt, Field(ge=0, le=130)]
ChildAge = Annotated[StrictInt, Field(ge=0, le=17)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_BEDS)]


class Strict(RequestBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- facilities -----------------------------------------------------------------------


class FacilityCreate(Strict):
    name: Text200
    kind: Kind
    operator_institution_id: Id
    state: StateCode
    municipality: Annotated[str, Field(min_length=1, max_length=120), SAFE_TEXT]
    address: Annotated[str, Field(min_length=3, max_length=500), SAFE_TEXT] | None = None
    latitude: Annotated[StrictFloat, Field(ge=14.0, le=33.0)] | None = None
    longitude: Annotated[StrictFloat, Field(ge=-119.0, le=-86.0)] | None = None
    specialization: Specialization = "trafficking"
    services: Annotated[list[ServiceOffered], Field(max_length=len(SERVICES_OFFERED))] = []
    security_level: SecurityLevel = "standard"
    max_stay_days: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None
    exploitation_types: Annotated[list[Exploitation], Field(max_length=3)] = []
    status: Annotated[
        str, Field(max_length=16), _one_of(("registered", "active"), "un estado inicial")
    ] = "registered"

    @model_validator(mode="after")
    def _dedupe(self) -> FacilityCreate:
        self.services = _unique(self.services)
        return self


class FacilityUpdate(Strict):
    """Any subset; ``status`` needs a ``reason``."""

    name: Text200 | None = None
    municipality: Annotated[str, Field(min_length=1, max_length=120), SAFE_TEXT] | None = None
    address: Annotated[str, Field(min_length=3, max_length=500), SAFE_TEXT] | None = None
    latitude: Annotated[StrictFloat, Field(ge=14.0, le=33.0)] | None = None
    longitude: Annotated[StrictFloat, Field(ge=-119.0, le=-86.0)] | None = None
    specialization: Specialization | None = None
    services: Annotated[list[ServiceOffered], Field(max_length=len(SERVICES_OFFERED))] | None = None
    security_level: SecurityLevel | None = None
    max_stay_days: Annotated[StrictInt, Field(ge=1, le=3650)] | None = None
    exploitation_types: Annotated[list[Exploitation], Field(max_length=3)] | None = None
    operator_institution_id: Id | None = None
    status: Status | None = None
    reason: Reason | None = None

    @model_validator(mode="after")
    def _status_needs_reason(self) -> FacilityUpdate:
        if self.status is not None and self.reason is None:
            raise PydanticCustomError(
                "reason_required", "Un cambio de estado necesita un motivo (reason)."
            )
        if self.services is not None:
            self.services = _unique(self.services)
        return self


class FacilityPublic(BaseModel):
    id: str
    name: str
    kind: str
    operator_institution_id: str
    state: str
    municipality: str
    specialization: str
    services: list[str]
    security_level: str
    max_stay_days: int | None
    exploitation_types: list[str] = []
    status: str
    status_changed_at: UtcDateTime
    status_reason: str | None
    registration_status: str = "not_submitted"
    registration_changed_at: UtcDateTime | None = None
    # Registered with observations: the checklist items still to meet, and by when.
    registration_pending: list[str] = Field(default_factory=list)
    registration_due_on: date | None = None
    version: int
    created_at: UtcDateTime


class FacilityWithLocation(FacilityPublic):
    address: str | None
    latitude: float | None
    longitude: float | None
    contact: str | None = None
    arrival_instructions: str | None = None


class ArrivalUpdate(Strict):
    """Set by the facility's own staff: who receives the people and how they get in
    (disclosed with the address, to the sender, after acceptance). ``None`` clears."""

    contact: Annotated[str, Field(min_length=3, max_length=300), SAFE_TEXT] | None = None
    arrival_instructions: Annotated[str, Field(min_length=3, max_length=1000), SAFE_TEXT] | None = (
        None
    )


def facility_answer(
    facility: Facility, location: FacilityLocation | None, *, with_location: bool
) -> FacilityPublic | FacilityWithLocation:
    """The facility as an answer; the location only when the caller may see it."""
    data = facility.model_dump()
    data["status_changed_at"] = as_utc(facility.status_changed_at)
    data["created_at"] = as_utc(facility.created_at)
    if not with_location:
        return FacilityPublic(**data)
    data["address"] = location.address if location else None
    data["latitude"] = location.latitude if location else None
    data["longitude"] = location.longitude if location else None
    data["contact"] = location.contact if location else None
    data["arrival_instructions"] = location.arrival_instructions if location else None
    return FacilityWithLocation(**data)


class FacilityPage(BaseModel):
    items: list[FacilityWithLocation | FacilityPublic]
    total: int
    limit: int
    offset: int


# --- registration on SEGOB's roster -----------------------------------------------------

Note = Annotated[str, Field(min_length=3, max_length=2000), SAFE_TEXT]


class RegistrationSubmit(Strict):
    note: Note | None = None


class ChecklistAnswer(Strict):
    item: Annotated[str, Field(min_length=1, max_length=40)]
    met: StrictBool
    note: Annotated[str, Field(max_length=500), SAFE_TEXT] | None = None


class RegistrationReview(Strict):
    """SEGOB's verdict; ``returned`` needs observations for the operator."""

    outcome: Annotated[
        str,
        Field(max_length=16, json_schema_extra={"enum": ["registered", "returned"]}),
        _one_of(("registered", "returned"), "un resultado de revisión"),
    ]
    checklist: Annotated[list[ChecklistAnswer], Field(max_length=50)]
    observations: Note | None = None
    # Registered with observations (ADR 0021): the date by which the unmet items must be met.
    due_on: date | None = None

    @model_validator(mode="after")
    def _returned_needs_observations(self) -> RegistrationReview:
        if self.outcome == "returned" and not self.observations:
            raise PydanticCustomError(
                "observations_required",
                "Una solicitud devuelta necesita observaciones (observations) para el operador.",
            )
        if self.due_on is not None and self.outcome != "registered":
            raise PydanticCustomError(
                "due_on_only_when_registered",
                "due_on: el plazo para cumplir los puntos pendientes solo acompaña un "
                "registro con observaciones (outcome «registered»).",
            )
        if self.due_on is not None and not self.observations:
            raise PydanticCustomError(
                "observations_required",
                "observations: un registro con observaciones necesita las observaciones "
                "para el operador.",
            )
        return self


class RegistrationStepPublic(BaseModel):
    attempt: int
    action: str
    actor: str
    institution_id: str | None
    note: str | None
    checklist: list[dict[str, Any]]
    due_on: date | None = None
    at: UtcDateTime


class RegistrationPublic(BaseModel):
    facility_id: str
    registration_status: str
    registration_label: str
    registration_changed_at: UtcDateTime | None
    registration_pending: list[str] = Field(default_factory=list)
    registration_due_on: date | None = None
    history: list[RegistrationStepPublic]
    checklist: list[dict[str, str]]


# --- pools ----------------------------------------------------------------------------


class _Eligibility(Strict):
    @model_validator(mode="after")
    def _coherent(self) -> Any:
        lo, hi = getattr(self, "min_age", None), getattr(self, "max_age", None)
        if lo is not None and hi is not None and lo > hi:
            raise PydanticCustomError(
                "age_range",
                "La edad mínima ({lo}) no puede ser mayor que la edad máxima ({hi}).",
                {"lo": lo, "hi": hi},
            )
        for name in ("sexes", "interpreter_languages", "disability_support", "reserved_for"):
            value = getattr(self, name, None)
            if value is not None:
                setattr(self, name, _unique(value))
        if getattr(self, "sexes", None) == []:
            raise PydanticCustomError(
                "sexes_empty", "Indique al menos un sexo admitido (F, M o X)."
            )
        return self


class PoolCreate(_Eligibility):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    sexes: Annotated[list[Sex], Field(min_length=1, max_length=3)]
    min_age: Age = 18
    max_age: Age = 120
    total: Count
    accepts_children: StrictBool = False
    max_child_age: ChildAge = 0
    max_children: Annotated[int, Field(ge=0, le=20)] = 0
    accepts_witnesses: StrictBool = False
    accepts_indirect_victims: StrictBool = False
    wheelchair_accessible: StrictBool = False
    migrants: StrictBool = False
    lgbtttiq: StrictBool = False
    interpreter_languages: Annotated[list[Language], Field(max_length=20)] = []
    disability_support: Annotated[list[Disability], Field(max_length=3)] = []
    pregnancy_care: StrictBool = False
    addiction_care: StrictBool = False
    reserved_for: Annotated[list[ReservableNeed], Field(max_length=3)] = []


class PoolUpdate(_Eligibility):
    """Eligibility changes; ``total`` is written to the ledger as an adjustment."""

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    sexes: Annotated[list[Sex], Field(min_length=1, max_length=3)] | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    total: Count | None = None
    accepts_children: StrictBool | None = None
    max_child_age: ChildAge | None = None
    max_children: Annotated[int, Field(ge=0, le=20)] | None = None
    accepts_witnesses: StrictBool | None = None
    accepts_indirect_victims: StrictBool | None = None
    wheelchair_accessible: StrictBool | None = None
    migrants: StrictBool | None = None
    lgbtttiq: StrictBool | None = None
    interpreter_languages: Annotated[list[Language], Field(max_length=20)] | None = None
    disability_support: Annotated[list[Disability], Field(max_length=3)] | None = None
    pregnancy_care: StrictBool | None = None
    addiction_care: StrictBool | None = None
    reserved_for: Annotated[list[ReservableNeed], Field(max_length=3)] | None = None
    reason: Reason | None = None


class PoolPublic(BaseModel):
    id: str
    facility_id: str
    name: str
    sexes: list[str]
    min_age: int
    max_age: int
    accepts_children: bool
    max_child_age: int
    max_children: int
    accepts_witnesses: bool
    accepts_indirect_victims: bool
    wheelchair_accessible: bool
    migrants: bool
    lgbtttiq: bool
    interpreter_languages: list[str]
    disability_support: list[str] = []
    pregnancy_care: bool = False
    addiction_care: bool = False
    reserved_for: list[str] = []
    total: int
    occupied: int
    held: int
    out_of_service: int
    available: int
    version: int
    last_confirmed_at: UtcDateTime | None

    @classmethod
    def of(cls, pool: Pool) -> PoolPublic:
        data = pool.model_dump(exclude={"revision", "created_at"})
        data["available"] = available_of(pool)
        data["last_confirmed_at"] = (
            as_utc(pool.last_confirmed_at) if pool.last_confirmed_at is not None else None
        )
        return cls(**data)


# --- ledger ---------------------------------------------------------------------------


AgeBand = Annotated[
    str,
    Field(max_length=8, json_schema_extra={"enum": list(ADMISSION_AGE_BANDS)}),
    _one_of(ADMISSION_AGE_BANDS, "un grupo de edad de la CNDH"),
]


class AdmittedPerson(Strict):
    """Who was admitted, as far as the coordinator knows: ``null`` is "sin información"."""

    sex: Sex | None = None
    age_band: AgeBand | None = None


class LedgerCreate(Strict):
    kind: LedgerKind
    beds: Annotated[StrictInt, Field(ge=-MAX_BEDS, le=MAX_BEDS)]
    reason: Reason
    # Of an ``admit``: one per bed (sex and CNDH age band). Omitted: recorded as S.I.
    people: Annotated[list[AdmittedPerson], Field(max_length=MAX_BEDS)] | None = None
    # Of an ``admit``: beds already occupied when the pool joined Canaliza (its opening
    # balance), not admissions of the period: no people enter the statistics.
    opening_balance: StrictBool = False

    @model_validator(mode="after")
    def _people_per_bed(self) -> LedgerCreate:
        if self.opening_balance and (self.kind != "admit" or self.people is not None):
            raise PydanticCustomError(
                "opening_balance_admit_only",
                "opening_balance: sólo un ingreso (admit) sin personas puede ser la ocupación "
                "inicial de la bolsa.",
            )
        if self.people is not None and (self.kind != "admit" or len(self.people) != self.beds):
            raise PydanticCustomError(
                "people_per_bed",
                "people: sólo un ingreso (admit) dice quiénes ingresaron, una persona por cama "
                "(omítalo para registrarlas como «sin información»).",
            )
        return self

    @model_validator(mode="after")
    def _sign(self) -> LedgerCreate:
        if self.kind == "adjust":
            if self.beds == 0:
                raise PydanticCustomError(
                    "beds_zero", "Un ajuste debe sumar o restar al menos una cama."
                )
        elif self.beds < 1:
            raise PydanticCustomError(
                "beds_positive",
                "El número de camas debe ser un entero positivo (sólo un ajuste puede ser "
                "negativo).",
            )
        return self


class LedgerEntryPublic(BaseModel):
    seq: int
    pool_id: str
    kind: str
    beds: int
    reason: str
    actor: str
    institution_id: str | None
    hold_id: str | None
    pool_version: int
    at: UtcDateTime


class LedgerPage(BaseModel):
    items: list[LedgerEntryPublic]
    pool: PoolPublic


# --- search ---------------------------------------------------------------------------


class Person(Strict):
    """A person to place; ``sex`` ``null`` (not recorded) matches only pools open to every sex."""

    sex: Sex | None
    age: Age | None = None
    role: PersonRole = "victim"
    # The languages the person speaks, from the catalogue (any spelling, accents or not).
    languages: Annotated[list[Language], Field(max_length=5)] = []
    # An accompanying child the group binds to one of its adults (her mother, e.g. of a
    # baby): the position of that adult in the group; a split never separates them.
    stays_with: Annotated[StrictInt, Field(ge=0, le=599)] | None = None


def _check_bonds(people: list[Person]) -> None:
    """``stays_with`` only on an accompanying child, naming an adult of the same group."""
    for i, person in enumerate(people):
        mother = person.stays_with
        if mother is None:
            continue
        if person.role != "accompanying_child":
            raise PydanticCustomError(
                "stays_with_not_child",
                "La persona {person} no es una niña o niño acompañante: sólo a ellos se les "
                "indica con quién se quedan (stays_with).",
                {"person": i + 1},
            )
        if mother >= len(people) or people[mother].role == "accompanying_child":
            raise PydanticCustomError(
                "stays_with_unknown",
                "La persona {person} debe quedarse con una persona adulta de su grupo "
                "(stays_with): la posición {mother} no lo es.",
                {"person": i + 1, "mother": mother},
            )


class Needs(Strict):
    """What the group needs; every field optional (an empty body needs nothing special)."""

    wheelchair: StrictBool = False
    interpreter_language: Language | None = None
    security: SecurityLevel | None = None
    migrant: StrictBool = False
    lgbtttiq: StrictBool = False
    specialised: StrictBool = False
    # Issue 16: any of these languages will do; disability types (``wheelchair`` is
    # mobility); pregnancy; addiction care; specialised care by type of exploitation;
    # states and municipalities to keep away from (where the perpetrators are); the stage
    # of care (a halfway house only for people leaving a refuge, never for a minor).
    languages: Annotated[list[Language], Field(max_length=5)] = []
    disabilities: Annotated[list[Disability], Field(max_length=3)] = []
    pregnancy: StrictBool = False
    addiction_care: StrictBool = False
    exploitation: Exploitation | None = None
    exclude_states: Annotated[list[StateCode], Field(max_length=32)] = []
    exclude_municipalities: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=120), SAFE_TEXT]], Field(max_length=20)
    ] = []
    stage: Stage = "immediate"


IntentKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SearchRequest(Strict):
    people: Annotated[list[Person], Field(min_length=1, max_length=20)]
    needs: Needs = Needs()
    state: StateCode | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    # One search intent (a prosecutor's case on one page): its re-runs count once as unmet.
    intent_key: IntentKey | None = None

    @model_validator(mode="after")
    def _bonds(self) -> SearchRequest:
        _check_bonds(self.people)
        return self


class PoolAllocation(BaseModel):
    pool_id: str
    pool_name: str
    beds: int
    people: list[int]


class SearchFacility(BaseModel):
    id: str
    name: str
    kind: str
    operator_institution_id: str
    state: str
    municipality: str
    specialization: str
    services: list[str]
    security_level: str
    max_stay_days: int | None
    registration_status: str


class SearchResult(BaseModel):
    facility: SearchFacility
    pools: list[PoolAllocation]
    stale: bool
    last_confirmed_at: UtcDateTime | None
    same_state: bool
    available: int
    # Free beds of the pools that fit the group (``available`` counts every free bed).
    eligible: int = 0
    # Not registered on SEGOB's roster (offered while the setting allows it).
    unregistered: bool
    # Beds kept for a need the group does not have: offered last, and saying so.
    reserved_for: list[str] = []
    note: str | None = None


class SearchAnswer(BaseModel):
    results: list[SearchResult]
    unmet: dict[str, Any] | None
    warnings: list[str]


# --- holds ----------------------------------------------------------------------------


class AllocationIn(Strict):
    pool_id: Id
    beds: Annotated[StrictInt, Field(ge=1, le=100)]


class HoldCreate(Strict):
    allocations: Annotated[list[AllocationIn], Field(min_length=1, max_length=20)]
    ttl_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] | None = None
    reference: Annotated[str, Field(max_length=120), SAFE_TEXT] | None = None
    # The group the beds are for (de-identified), kept with the hold.
    people: Annotated[list[Person], Field(min_length=1, max_length=20)] | None = None


class AllocationOut(BaseModel):
    pool_id: str
    beds: int


class HoldPublic(BaseModel):
    id: str
    facility_id: str
    status: str
    allocations: list[AllocationOut]
    expires_at: UtcDateTime
    created_at: UtcDateTime
    ended_at: UtcDateTime | None
    reference: str | None
    created_by: str
    institution_id: str | None
    operation_id: str | None = None
    people: list[dict[str, Any]] = Field(default_factory=list)

    @classmethod
    def of(cls, hold: Hold, allocations: list[HoldAllocation]) -> HoldPublic:
        return cls(
            id=hold.id,
            facility_id=hold.facility_id,
            status=hold.status,
            allocations=[AllocationOut(pool_id=a.pool_id, beds=a.beds) for a in allocations],
            expires_at=as_utc(hold.expires_at),
            created_at=as_utc(hold.created_at),
            ended_at=as_utc_or_none(hold.ended_at),
            reference=hold.reference,
            created_by=hold.created_by,
            institution_id=hold.institution_id,
            operation_id=hold.operation_id,
            people=list(hold.people or []),
        )


class ConsumeRequest(Strict):
    reason: Reason | None = None


# --- roster import --------------------------------------------------------------------


class PoolImport(Strict):
    """A pool with its initial occupancy (written to the ledger as admissions)."""

    key: Annotated[str, Field(min_length=1, max_length=120)]
    pool: PoolCreate
    occupied: Count = 0
    out_of_service: Count = 0

    @model_validator(mode="after")
    def _fits(self) -> PoolImport:
        if self.occupied + self.out_of_service > self.pool.total:
            raise ValueError("occupied + out_of_service no puede exceder total")
        return self


class FacilityImport(Strict):
    """A facility in its final status, with its pools; ``key`` is the caller's own id."""

    key: Annotated[str, Field(min_length=1, max_length=120)]
    facility: FacilityCreate
    status: Status
    status_reason: Annotated[str, Field(min_length=3, max_length=500), SAFE_TEXT] | None = None
    pools: list[PoolImport] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _occupancy_needs_an_open_door(self) -> FacilityImport:
        if self.status != "active" and any(p.occupied for p in self.pools):
            raise ValueError("solo una instalación activa tiene camas ocupadas")
        return self


class RosterImport(Strict):
    """A batch of the roster (at most 200 facilities per request)."""

    facilities: list[FacilityImport] = Field(min_length=1, max_length=200)


class RosterImportResult(BaseModel):
    facilities: dict[str, str]
    pools: dict[str, str]
    created_facilities: int
    created_pools: int
    ledger_entries: int
    already_present: int
    event_id: str | None


# --- rescue operations ----------------------------------------------------------------

MAX_OPERATION_PEOPLE = 600
MAX_OPERATION_GROUPS = 300


class OperationGroup(Strict):
    """A family group: placed together, or explicitly split (marked ``split``)."""

    people: Annotated[list[Person], Field(max_length=MAX_OPERATION_PEOPLE)]
    needs: Needs = Needs()

    @model_validator(mode="after")
    def _someone(self) -> OperationGroup:
        if not self.people:
            raise PydanticCustomError(
                "group_empty", "Un grupo del operativo debe tener al menos una persona (people)."
            )
        _check_bonds(self.people)
        return self


def _operation_size(groups: list[OperationGroup]) -> None:
    people = sum(len(g.people) for g in groups)
    if people > MAX_OPERATION_PEOPLE:
        raise PydanticCustomError(
            "operation_too_large",
            "Un operativo puede planear hasta {limit} personas a la vez; se enviaron {people}. "
            "Divida el operativo en dos.",
            {"limit": MAX_OPERATION_PEOPLE, "people": people},
        )


class OperationPlanRequest(Strict):
    state: StateCode
    groups: Annotated[list[OperationGroup], Field(min_length=1, max_length=MAX_OPERATION_GROUPS)]

    @model_validator(mode="after")
    def _bounded(self) -> OperationPlanRequest:
        _operation_size(self.groups)
        return self


class PinnedAllocation(RequestBody):
    """Beds of one pool for a pinned assignment; ``people`` (positions in the group) may be
    left out for a whole group. The plan's other fields (``pool_name``) are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    pool_id: Id
    beds: Annotated[StrictInt, Field(ge=1, le=MAX_OPERATION_PEOPLE)]
    people: (
        Annotated[
            list[Annotated[StrictInt, Field(ge=0, le=MAX_OPERATION_PEOPLE)]],
            Field(max_length=MAX_OPERATION_PEOPLE),
        ]
        | None
    ) = None


class PinnedAssignment(RequestBody):
    """An assignment of the plan kept or changed by the prosecutor: held as it is if its
    beds are still free. The plan's other fields (``facility_name``, ``hold_id``, ...)
    are ignored, so the plan's own assignments may be sent back as they are."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    group: Annotated[StrictInt, Field(ge=0)]
    facility_id: Id
    allocations: Annotated[list[PinnedAllocation], Field(min_length=1, max_length=20)]
    split: StrictBool = False


class OperationCreate(OperationPlanRequest):
    name: Text200
    ttl_minutes: Annotated[StrictInt, Field(ge=1, le=7 * 24 * 60)] | None = None
    # The operation's date (the rescue day).
    date: datetime.date | None = None
    # The plan as adjusted on screen (issue 16): pinned assignments, and groups to leave
    # unplaced; every other group is planned as usual.
    assignments: Annotated[list[PinnedAssignment], Field(max_length=MAX_OPERATION_PEOPLE)] = []
    leave_unplaced: Annotated[
        list[Annotated[StrictInt, Field(ge=0)]], Field(max_length=MAX_OPERATION_GROUPS)
    ] = []

    @model_validator(mode="after")
    def _leave(self) -> OperationCreate:
        pinned = {a.group for a in self.assignments}
        for i, g in enumerate(self.leave_unplaced):
            if g >= len(self.groups) or g in pinned or g in self.leave_unplaced[:i]:
                raise PydanticCustomError(
                    "leave_unplaced_invalid",
                    "leave_unplaced[{i}]: el grupo {g} no existe en el operativo, ya tiene "
                    "asignación o está repetido.",
                    {"i": i, "g": g},
                )
        return self


class OperationAllocation(BaseModel):
    pool_id: str
    pool_name: str
    beds: int
    people: list[int]


class OperationAssignment(BaseModel):
    group: int
    facility_id: str
    facility_name: str
    state: str
    municipality: str
    kind: str
    operator_institution_id: str
    allocations: list[OperationAllocation]
    people: list[int]
    split: bool
    reserved_for: list[str] = []
    note: str | None = None
    hold_id: str | None = None


class OperationUnplaced(BaseModel):
    group: int
    people: int
    reason: dict[str, Any]


class OperationCandidatesRequest(Strict):
    """Where one group of an operation (or the people of one part of it) could go instead:
    the screen's "change the place" while adjusting a plan. ``taken``: beds per pool the
    rest of the adjusted plan uses (not offered again)."""

    state: StateCode
    group: OperationGroup
    people: (
        Annotated[
            list[Annotated[StrictInt, Field(ge=0, le=MAX_OPERATION_PEOPLE)]],
            Field(min_length=1, max_length=MAX_OPERATION_PEOPLE),
        ]
        | None
    ) = None
    taken: Annotated[
        dict[Id, Annotated[StrictInt, Field(ge=0, le=MAX_OPERATION_PEOPLE)]],
        Field(max_length=MAX_OPERATION_PEOPLE),
    ] = {}
    limit: Annotated[StrictInt, Field(ge=1, le=20)] = 8

    @model_validator(mode="after")
    def _people(self) -> OperationCandidatesRequest:
        size = len(self.group.people)
        chosen = self.people or []
        if any(i >= size for i in chosen) or len(set(chosen)) != len(chosen):
            raise PydanticCustomError(
                "people_invalid",
                "people: cada posición debe ser de una persona del grupo (de 0 a {last}) y "
                "aparecer una vez.",
                {"last": size - 1},
            )
        return self


class OperationCandidate(BaseModel):
    facility_id: str
    facility_name: str
    state: str
    municipality: str
    kind: str
    same_state: bool
    eligible_free: int
    allocations: list[OperationAllocation]
    people: list[int]
    reserved_for: list[str] = []
    note: str | None = None


class OperationCandidatesAnswer(BaseModel):
    candidates: list[OperationCandidate]
    # Per person and per need: where beds that take them are free (why not elsewhere).
    explanations: list[dict[str, Any]]
    unmet: dict[str, Any] | None = None


class OperationPlanAnswer(BaseModel):
    assignments: list[OperationAssignment]
    unplaced: list[OperationUnplaced]
    summary: dict[str, Any]
    # Whether the plan is proven the best among its candidates with nothing cut short,
    # and the first stage the time limit cut short (null: none; ADR 0020).
    optimal: bool = False
    stopped: str | None = None


class OperationPublic(OperationPlanAnswer):
    id: str
    name: str
    state: str
    status: str
    people: int
    created_by: str
    institution_id: str | None
    operation_date: datetime.date | None = None
    created_at: UtcDateTime
    expires_at: UtcDateTime
    released_at: UtcDateTime | None
    holds: dict[str, str] = {}  # hold id -> its status now

"""Request and answer bodies of the capacity API (unknown fields refused, strings bounded)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

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
from services.clock import UtcDateTime, as_utc
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
Language = Annotated[str, Field(min_length=2, max_length=40)]
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
    status: str
    status_changed_at: UtcDateTime
    status_reason: str | None
    registration_status: str = "not_submitted"
    registration_changed_at: UtcDateTime | None = None
    version: int
    created_at: UtcDateTime


class FacilityWithLocation(FacilityPublic):
    address: str | None
    latitude: float | None
    longitude: float | None


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

    @model_validator(mode="after")
    def _returned_needs_observations(self) -> RegistrationReview:
        if self.outcome == "returned" and not self.observations:
            raise PydanticCustomError(
                "observations_required",
                "Una solicitud devuelta necesita observaciones (observations) para el operador.",
            )
        return self


class RegistrationStepPublic(BaseModel):
    attempt: int
    action: str
    actor: str
    institution_id: str | None
    note: str | None
    checklist: list[dict[str, Any]]
    at: UtcDateTime


class RegistrationPublic(BaseModel):
    facility_id: str
    registration_status: str
    registration_label: str
    registration_changed_at: UtcDateTime | None
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
        for name in ("sexes", "interpreter_languages"):
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


class Needs(Strict):
    wheelchair: StrictBool = False
    interpreter_language: Language | None = None
    security: SecurityLevel | None = None
    migrant: StrictBool = False
    lgbtttiq: StrictBool = False
    specialised: StrictBool = False


IntentKey = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SearchRequest(Strict):
    people: Annotated[list[Person], Field(min_length=1, max_length=20)]
    needs: Needs = Needs()
    state: StateCode | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    # One search intent (a prosecutor's case on one page): its re-runs count once as unmet.
    intent_key: IntentKey | None = None


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
    # Not registered on SEGOB's roster (offered while the setting allows it).
    unregistered: bool


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

    @classmethod
    def of(cls, hold: Hold, allocations: list[HoldAllocation]) -> HoldPublic:
        return cls(
            id=hold.id,
            facility_id=hold.facility_id,
            status=hold.status,
            allocations=[AllocationOut(pool_id=a.pool_id, beds=a.beds) for a in allocations],
            expires_at=as_utc(hold.expires_at),
            created_at=as_utc(hold.created_at),
            ended_at=as_utc(hold.ended_at) if hold.ended_at else None,
            reference=hold.reference,
            created_by=hold.created_by,
            institution_id=hold.institution_id,
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

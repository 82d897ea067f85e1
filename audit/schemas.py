"""Response models of the audit service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.bodies import RequestBody
from services.clock import UtcDateTime, utcnow
from services.validation import SAFE_TEXT


class EntryOut(BaseModel):
    """One trail entry as auditors see it (identities and addresses never stored)."""

    model_config = ConfigDict(extra="forbid")
    position: int
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=200)
    actor: str | None = Field(default=None, max_length=200)
    institution_id: str | None = Field(default=None, max_length=64)
    facility_id: str | None = Field(default=None, max_length=64)
    occurred_at: UtcDateTime
    entry: dict[str, Any]
    hash: str = Field(max_length=64)


class EntryPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[EntryOut]
    total: int
    limit: int
    offset: int
    next_cursor: str | None = None  # the next page's cursor (``cursor=``); null on the last


class PublicKeyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: str = Field(max_length=20)
    public_key_pem: str = Field(max_length=2000)


# --- roster and visits ---------------------------------------------------------------------

TeamMember = Annotated[str, Field(min_length=2, max_length=200), SAFE_TEXT]
Team = Annotated[list[TeamMember], Field(min_length=1, max_length=20)]
Findings = Annotated[str, Field(min_length=3, max_length=5000), SAFE_TEXT]


class _Strict(RequestBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActionCreate(_Strict):
    description: Annotated[str, Field(min_length=3, max_length=1000), SAFE_TEXT]
    due_on: date


class VisitCreate(_Strict):
    """Plan a visit (``planned_for``), or record one already done (``done_on`` + findings)."""

    facility_id: Annotated[str, Field(min_length=1, max_length=64)]
    planned_for: date | None = None
    done_on: date | None = None
    team: Team
    findings: Findings | None = None
    actions: Annotated[list[ActionCreate], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _coherent(self) -> VisitCreate:
        if self.done_on is None and self.planned_for is None:
            raise PydanticCustomError(
                "visit_date_required",
                "Indique la fecha programada (planned_for) o la fecha en que se realizó (done_on).",
            )
        if self.done_on is not None:
            _done_checks(self.done_on, self.findings)
        elif self.findings or self.actions:
            raise PydanticCustomError(
                "visit_not_done",
                "Hallazgos y acciones se registran cuando la visita se realizó (done_on).",
            )
        return self


def _done_checks(done_on: date, findings: str | None) -> None:
    if done_on > utcnow().date():
        raise PydanticCustomError(
            "done_in_future", "Una visita realizada no puede tener fecha futura."
        )
    if not findings:
        raise PydanticCustomError(
            "findings_required", "Una visita realizada necesita sus hallazgos (findings)."
        )


class VisitDone(_Strict):
    done_on: date
    team: Team | None = None
    findings: Findings
    actions: Annotated[list[ActionCreate], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _coherent(self) -> VisitDone:
        _done_checks(self.done_on, self.findings)
        return self


class VisitCancel(_Strict):
    reason: Annotated[str, Field(min_length=3, max_length=500), SAFE_TEXT]


class ActionComplete(_Strict):
    note: Annotated[str, Field(min_length=1, max_length=1000), SAFE_TEXT] | None = None


class ActionOut(BaseModel):
    id: str
    visit_id: str
    facility_id: str
    description: str
    due_on: date
    completed_at: datetime | None
    completed_by: str | None
    completion_note: str | None
    overdue: bool


class VisitOut(BaseModel):
    id: str
    facility_id: str
    status: str
    planned_for: date | None
    done_on: date | None
    team: list[str]
    findings: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int
    actions: list[ActionOut]


class RosterEntry(BaseModel):
    """One facility on SEGOB's roster: no address, ever."""

    model_config = ConfigDict(extra="forbid")
    facility_id: str
    name: str
    kind: str | None
    operator_institution_id: str | None
    state: str | None
    municipality: str | None
    status: str | None
    registration_status: str
    # Registered with observations (ADR 0021): the items still to meet, and by when.
    registration_pending: list[str] = []
    registration_due_on: date | None = None
    beds: int
    occupied: int
    capacity_confirmed_at: datetime | None
    last_visit_on: date | None
    visits_done: int
    next_visit_planned_for: date | None
    open_actions: int
    overdue_actions: int
    # Stays against the facility's maximum (ADR 0022).
    max_stay_days: int | None = None
    stays_near_limit: int = 0
    stays_over_limit: int = 0
    flags: list[str]
    flag_labels: list[str]


class RegistrationStepOut(BaseModel):
    """A submission or review of the facility's registration, as the trail holds it."""

    type: str
    registration_status: str | None
    outcome: str | None
    unmet: list[str]
    checklist: list[dict[str, Any]]
    pending: list[str]
    due_on: date | None
    at: datetime


class RosterDetail(RosterEntry):
    visits: list[VisitOut]
    registration_history: list[RegistrationStepOut] = []


class RosterPage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[RosterEntry]
    total: int | None  # null on a page filtered by flag (its count: flag_counts[flag])
    flag_counts: dict[str, int]
    flags: dict[str, str]
    next_cursor: str | None = None  # the next page's cursor; null on the last page

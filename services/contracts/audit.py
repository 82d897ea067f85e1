"""Typed contracts of the events the audit service produces (see services.contracts.base).

Built by ``audit.visits`` (visits and follow-up actions) and ``audit.service`` (exports).
No field names a person: a visit carries its team's size, never the team.
"""

from __future__ import annotations

from services.contracts.base import EventPayload, contract


class VisitChanged(EventPayload):
    """A visit as it stands after the change (the event type says which change)."""

    visit_id: str
    facility_id: str
    status: str
    planned_for: str | None
    done_on: str | None
    team_size: int
    findings: str | None


@contract("audit.visit.planned", aggregate="visit")
class VisitPlanned(VisitChanged):
    """A visit was planned."""


@contract("audit.visit.done", aggregate="visit")
class VisitDone(VisitChanged):
    """A visit took place (recorded done at once, or a planned one carried out)."""


@contract("audit.visit.cancelled", aggregate="visit")
class VisitCancelled(VisitChanged):
    """A planned visit was cancelled (the reason is its findings)."""


VISIT_EVENTS: dict[str, type[VisitChanged]] = {
    "planned": VisitPlanned,
    "done": VisitDone,
    "cancelled": VisitCancelled,
}


@contract("audit.action.added", aggregate="follow_up_action")
class ActionAdded(EventPayload):
    """A follow-up action derived from a done visit."""

    action_id: str
    visit_id: str
    facility_id: str
    description: str
    due_on: str


@contract("audit.action.completed", aggregate="follow_up_action")
class ActionCompleted(EventPayload):
    """A follow-up action was done (``late``: after its due date)."""

    action_id: str
    visit_id: str
    facility_id: str
    due_on: str
    late: bool
    note: str | None


@contract("audit.export.made", aggregate="report")
class ExportMade(EventPayload):
    """A report or listing left the service as a file or an export."""

    report: str
    format: str

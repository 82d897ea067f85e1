"""Audit domain errors."""

from __future__ import annotations

from services.errors import Conflict, Forbidden, NotFound


class NotAnAuditor(Forbidden):
    """Only SEGOB auditors and platform admins read the trail."""


class FacilityNotOnRoster(NotFound):
    code = "facility_not_found"

    def __init__(self) -> None:
        super().__init__("Esa instalación no está en el padrón.")


class VisitNotFound(NotFound):
    code = "visit_not_found"

    def __init__(self) -> None:
        super().__init__("No existe esa visita.")


class VisitConflict(Conflict):
    code = "visit_conflict"

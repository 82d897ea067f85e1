"""Who may do what in the audit service (in one place)."""

from __future__ import annotations

from services.errors import Forbidden
from services.tokens import Principal
from services.vocabulary import UserRole

TRAIL_READERS = frozenset({UserRole.SEGOB_AUDITOR, UserRole.PLATFORM_ADMIN})


def ensure_trail_reader(principal: Principal) -> None:
    """Only SEGOB auditors and platform admins read the audit trail."""
    if not (set(principal.roles) & TRAIL_READERS):
        raise Forbidden(
            "Sólo la auditoría de SEGOB y la administración leen la bitácora.",
            code="forbidden_role",
        )


REPORT_READERS = TRAIL_READERS | {UserRole.OBSERVER}


def ensure_report_reader(principal: Principal) -> None:
    """Auditors, admins and observers read statistics."""
    if not (set(principal.roles) & REPORT_READERS):
        raise Forbidden("Su rol no permite consultar estadísticas.", code="forbidden_role")


def is_suppressed_only(principal: Principal) -> bool:
    """Observers see aggregates with small counts suppressed."""
    return not (set(principal.roles) & TRAIL_READERS)


def ensure_oversight_writer(principal: Principal) -> None:
    """Visits and follow-up actions are recorded by SEGOB auditors (or platform admins)."""
    if not (set(principal.roles) & TRAIL_READERS):
        raise Forbidden(
            "Sólo la auditoría de SEGOB registra visitas y acciones de seguimiento.",
            code="forbidden_role",
        )
